"""Every run is bounded: `run --timeout` and `eval --task-timeout` end a run that would go on for ever
with stop reason timeout, recorded like any other stop (result.json, the trace's end event, the report)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.cli.main import main
from traces.report import write_report
from traces.schema import read_trace

WIDGETS = Path(__file__).resolve().parents[2] / "pages" / "widgets.html"
CLICK_FIRST = json.dumps({"candidates": [{"action": "click('e1')", "reason": "start"}]})


def script(tmp_path: Path, policy: list[str], delay_s: float = 0.0) -> Path:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"delay_s": delay_s, "policy": policy}))
    return path


def run(tmp_path: Path, url: Path | str, model: Path, *flags: str) -> int:
    return main(["run", "--url", str(url), "--goal", "Wait.", "--strategy", "reactive", "--model", f"scripted:{model}",
                 "--no-screenshots", "--out", str(tmp_path / "run"), *flags])


def assert_recorded_timeout(task_dir: Path, limit: float) -> dict:
    result = json.loads((task_dir / "result.json").read_text())
    assert result["stop_reason"] == "timeout"
    assert result["stop_detail"] == f"the run's time limit of {limit:g} s was reached"
    trace = read_trace(task_dir)  # readable to the end
    assert trace.end is not None and trace.end["stop_reason"] == "timeout"
    assert "timeout" in write_report(task_dir).read_text()
    return result


def test_a_model_that_never_answers_is_cut_off_at_the_timeout(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    assert run(tmp_path, WIDGETS, script(tmp_path, ["noop()"], delay_s=600), "--timeout", "2") == 0
    assert time.perf_counter() - started < 60  # the model would have taken ten minutes
    result = assert_recorded_timeout(tmp_path / "run" / "widgets", 2)
    assert 2 <= result["seconds"] < 10
    assert "stop reason timeout (the run's time limit of 2 s was reached)" in capsys.readouterr().out


def test_a_page_whose_script_never_ends_is_cut_off_at_the_timeout(tmp_path: Path) -> None:
    page = tmp_path / "busy.html"
    page.write_text('<!doctype html><title>Busy</title><button onclick="while (true) {}">Spin</button>')
    started = time.perf_counter()
    # The click hangs the page for good: the action times out, and observing the page would wait for ever.
    assert run(tmp_path, page, script(tmp_path, [CLICK_FIRST, "noop()"]), "--timeout", "3") == 0
    assert time.perf_counter() - started < 60
    assert_recorded_timeout(tmp_path / "run" / "busy", 3)


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_timeout_that_is_not_a_positive_number_is_one_line_and_exit_2(
        tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, WIDGETS, script(tmp_path, ["noop()"]), "--timeout", value) == 2
    err = capsys.readouterr().err
    assert "timeout must be a positive number of seconds" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_eval_task_timeout_ends_the_run_the_same_way_and_counts_as_an_error(tmp_path: Path) -> None:
    model = script(tmp_path, ["noop()"], delay_s=600)
    out = tmp_path / "eval"
    assert main(["eval", "--suite", "miniwob", "--tasks", "click-test", "--strategy", "reactive",
                 "--model", f"scripted:{model}", "--task-timeout", "2", "--no-screenshots", "--out", str(out)]) == 0
    (record,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert (record["status"], record["stop_reason"], record["error"]) == ("error", "timeout", "timed out after 2 s")
    assert_recorded_timeout(out / "reactive" / record["task_id"], 2)
