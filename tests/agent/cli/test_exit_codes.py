"""`forethought run`'s exit codes, through the real command: 0 the run finished (whatever its outcome),
1 it failed for a reason outside the user's control (the model failed for good), 2 misuse. And the
bundled example scripts, which run with the default flags (dreamer, k=5, samples=3)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli.main import main

SCRIPTS = Path(__file__).resolve().parents[3] / "traces" / "examples" / "scripts"
DEMO_GOAL = "Order 2 notebooks with a Sand cover, then tell me what the status line says."


def forethought(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=300)


def test_exit_0_for_an_answer_1_for_a_model_that_failed_for_good_2_for_misuse(tmp_path: Path) -> None:
    answering = tmp_path / "answering.json"
    answering.write_text(json.dumps({"policy": ["send_msg_to_user('done')"]}))
    answered = forethought("run", "--url", "bundled:demo", "--goal", "say done", "--strategy", "reactive",
                           "--model", f"scripted:{answering}", "--out", tmp_path / "answered")
    assert answered.returncode == 0, answered.stderr
    assert json.loads((tmp_path / "answered" / "demo" / "result.json").read_text())["answer"] == "done"

    # The policy proposes, but the world model the default strategy (dreamer) asks has no answer left.
    exhausted = tmp_path / "exhausted.json"
    exhausted.write_text(json.dumps({"policy": ["click('e12')"]}))
    failed = forethought("run", "--url", "bundled:demo", "--goal", "add to cart", "--model", f"scripted:{exhausted}",
                         "--out", tmp_path / "failed")
    assert failed.returncode == 1, failed.stderr
    result = json.loads((tmp_path / "failed" / "demo" / "result.json").read_text())
    assert result["stop_reason"] == "llm_error" and "no answer left for role 'world_model'" in result["error"]
    assert "stop reason llm_error" in failed.stdout and "Traceback" not in failed.stderr

    misuse = forethought("run", "--url", "bundled:demo", "--goal", "x", "--no-such-flag")
    assert misuse.returncode == 2 and "unrecognized arguments: --no-such-flag" in misuse.stderr


def test_help_says_what_each_exit_code_means(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = capsys.readouterr().out
    epilog = shown[shown.index("exit codes:"):]
    assert "0  the run finished, whatever its outcome" in epilog
    assert "1  the run failed for a reason outside your control" in epilog and "llm_error" in epilog
    assert "2  misuse" in epilog


# Each bundled script: what to run it on, and how its run ends.
EXAMPLES = {
    "demo-order.json": (["--url", "bundled:demo", "--goal", DEMO_GOAL], "demo", "answer"),
    "miniwob-click-button.json": (["--url", "miniwob:click-button", "--seed", "1"], "miniwob.click-button.seed1",
                                  "task_done"),
    "miniwob-enter-text.json": (["--url", "miniwob:enter-text", "--seed", "1"], "miniwob.enter-text.seed1",
                                "task_done"),
}


def test_every_bundled_script_is_checked_here() -> None:
    assert sorted(p.name for p in SCRIPTS.glob("*.json")) == sorted(EXAMPLES)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
@pytest.mark.parametrize("flags", [[], ["-k", "2", "--samples", "1"]], ids=["defaults", "the-examples-flags"])
def test_a_bundled_script_runs_to_its_end(script: str, flags: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    task, task_id, stop_reason = EXAMPLES[script]
    code = main(["run", *task, *flags, "--model", f"scripted:{SCRIPTS / script}", "--no-screenshots",
                 "--out", str(tmp_path)])
    result = json.loads((tmp_path / task_id / "result.json").read_text())
    assert (code, result["stop_reason"], result["error"]) == (0, stop_reason, None)
    if stop_reason == "answer":
        assert result["answer"] == "Added 2 × Sand notebook to your cart."
    else:
        assert result["reward"] == 1.0  # the MiniWoB++ episode was solved
    steps = [json.loads(line) for line in (tmp_path / task_id / "steps.jsonl").read_text().splitlines()]
    assert all(score["value"] in (0.0, 0.5, 1.0) for step in steps for score in step["scores"].values())
