"""`forethought wm-eval` on the recorded examples: the scripted world model's predictions name what
really changed; SmolLM2-135M's (template echoes, made-up URLs, unparsed JSON) score as poor."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "traces" / "examples"
SMOLLM2 = EXAMPLES / "smollm2"  # recorded by traces/examples/make_smollm2_examples.py


def wm_eval_json(capsys: pytest.CaptureFixture[str], *paths: Path) -> dict[str, Any]:
    assert main(["wm-eval", "--json", *map(str, paths)]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_wm_eval_scores_the_smollm2_runs_poor_and_the_scripted_examples_right(
    capsys: pytest.CaptureFixture[str]
) -> None:
    smollm2 = wm_eval_json(capsys, SMOLLM2)
    assert len(smollm2["traces"]) == 2
    total = smollm2["overall"]["recorded"]
    assert total["actions"] == 4 and total["claims"] >= 4
    assert total["f1"] < 0.2 and total["precision"] < 0.2, total
    steps = [step for trace in smollm2["traces"] for step in trace["recorded"]["steps"]]
    assert all(step["score"] >= 0.8 for step in steps)  # adaptive sees a surprise at every step
    assert any(not step["predicted"] for step in steps)  # an unparsed answer is no prediction, not a hit

    scripted = wm_eval_json(capsys, EXAMPLES)  # the run directory of the three scripted examples
    total = scripted["overall"]["recorded"]
    assert (total["actions"], total["f1"], total["precision"], total["recall"]) == (7, 1.0, 1.0, 1.0)
    assert (total["claims"], total["changes"]) == (7, 6)


def test_wm_eval_prints_each_steps_precision_recall_and_f1_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wm-eval", str(SMOLLM2 / "miniwob.click-button.seed1"), str(EXAMPLES / "demo-order")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == [
        str(SMOLLM2 / "miniwob.click-button.seed1"),
        "  recorded predictions: F1 0.000  precision 0.000 (0/3)  recall 0.000 (0/1)  over 1 actions",
        "    step 1 click('e1'): F1 0.000  precision 0.000 (0/3)  recall 0.000 (0/1)",
    ]
    assert "    step 3 click('e12'): F1 1.000  precision 1.000 (2/2)  recall 1.000 (1/1)" in printed
    # Step 4 (the answer) left the page as it was, and its prediction claimed no change: nothing to count.
    assert printed[printed.index("overall") - 1].endswith(": F1 1.000  precision - (0/0)  recall - (0/0)")
    assert printed[printed.index("overall") + 1] == (
        "  recorded predictions: F1 0.649  precision 0.571 (4/7)  recall 0.750 (3/4)  over 5 actions")
