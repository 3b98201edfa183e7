"""`forethought run --task FILE`: a task config with an `eval` entry is scored by its evaluators."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli.main import main

PAGE = Path(__file__).resolve().parents[2] / "pages" / "widgets.html"


def task_file(tmp_path: Path, eval_types: list[str], answer: str = "1234") -> Path:
    config = {"task_id": 7, "intent": "What is the order number?", "start_url": PAGE.as_uri(), "sites": [],
              "eval": {"eval_types": eval_types, "reference_answers": {"exact_match": answer},
                       "reference_url": "", "program_html": []}}
    path = tmp_path / "7.json"
    path.write_text(json.dumps(config))
    return path


def run(tmp_path: Path, task: Path, answer: str) -> int:
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"policy": [f"send_msg_to_user('{answer}')"]}))
    return main(["run", "--task", str(task), "--model", f"scripted:{script}", "--strategy", "reactive",
                 "--no-screenshots", "--out", str(tmp_path / "run")])


@pytest.mark.parametrize("answer, reward", [("1234", 1.0), ("4321", 0.0)])
def test_run_task_scores_the_answer_with_the_tasks_evaluator(tmp_path: Path, answer: str, reward: float,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, task_file(tmp_path, ["string_match"]), answer) == 0
    result = json.loads((tmp_path / "run" / "7" / "result.json").read_text())
    assert result["reward"] == reward
    assert f"reward {reward:g}" in capsys.readouterr().out


def test_run_task_refuses_an_unknown_eval_type_naming_the_task(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, task_file(tmp_path, ["string_match", "screenshot_match"]), "1234") == 2
    err = capsys.readouterr().err
    assert "task 7" in err and "eval.eval_types" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
