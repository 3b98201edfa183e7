"""`--json` on eval (the summary), replay (a verdict per step) and wm-eval (the scores): stdout holds only
the JSON, whatever else the command tells goes to stderr. Through the real CLI."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "traces" / "examples"
PAGE = """<title>Counter</title><p id="status">Nothing yet.</p>
<button onclick="document.getElementById('status').textContent = 'Alpha WORD'">Alpha</button>
<button onclick="document.getElementById('status').textContent = 'Beta WORD'">Beta</button>"""


def json_out(capsys: pytest.CaptureFixture[str], code: int, *argv: object) -> tuple[Any, str]:
    """`forethought argv` exits `code`; its stdout parsed as one JSON document, and its stderr."""
    capsys.readouterr()
    assert main([str(arg) for arg in argv]) == code
    printed = capsys.readouterr()
    return json.loads(printed.out), printed.err


def test_eval_json_is_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary, err = json_out(capsys, 0, "eval", "--suite", "local", "--agent", "oracle", "--tasks", "local.shop.1",
                            "--out", tmp_path, "--json")
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert summary["strategies"]["oracle"]["successes"] == 1
    assert "1/1" in err  # the progress, on stderr


def test_replay_json_gives_a_verdict_per_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "counter.html"
    page.write_text(PAGE.replace("WORD", "clicked"))
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"policy": ["click('e1')", "click('e2')", "send_msg_to_user('done')"]}))
    assert main(["run", "--url", str(page), "--goal", "Click Alpha, then Beta", "--strategy", "reactive",
                 "--model", f"scripted:{script}", "--no-screenshots", "--out", str(tmp_path / "run")]) == 0
    task_dir = tmp_path / "run" / "counter"

    replayed, err = json_out(capsys, 0, "replay", task_dir, "--json")
    assert (replayed["matched"], replayed["total"]) == (1, 1)
    [task] = replayed["tasks"]
    assert task["task_dir"] == str(task_dir) and task["matched"] is True
    assert [(s["step"], s["action"], s["verdict"]) for s in task["steps"]] == [
        (0, None, "same"), (1, "click('e1')", "same"), (2, "click('e2')", "same"),
        (3, "send_msg_to_user('done')", "same")]
    assert "all 4 states match" in err

    page.write_text(PAGE.replace("WORD", "pressed"))  # the page changed since the run
    replayed, _ = json_out(capsys, 1, "replay", task_dir, "--json")
    [task] = replayed["tasks"]
    assert replayed["matched"] == 0 and task["matched"] is False
    assert [s["verdict"] for s in task["steps"]] == ["same", "diverged", "not replayed", "not replayed"]
    assert "+text 'Alpha pressed'" in task["steps"][1]["diff"]

    agent, _ = json_out(capsys, 0, "replay", EXAMPLES / "miniwob.enter-text.seed1", "--agent", "--out",
                        tmp_path / "again", "--json")
    [task] = agent["tasks"]
    assert [(s["recorded"], s["verdict"]) for s in task["steps"]] == [("fill('e1', 'Jerald')", "same"),
                                                                       ("click('e2')", "same")]
    assert task["stop_reason"] == {"recorded": "task_done", "replayed": "task_done"}


def test_wm_eval_json_is_the_scores_alone(capsys: pytest.CaptureFixture[str]) -> None:
    scores, _ = json_out(capsys, 0, "wm-eval", EXAMPLES / "demo-order", "--json")
    assert set(scores) == {"model", "traces", "overall"} and scores["overall"]["recorded"]["f1"] == 1.0
