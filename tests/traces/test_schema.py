"""Reading traces back (no browser): corrupted and cut-off files are named by line; fingerprints
ignore clocks but not real changes; secrets are masked in everything the recorder writes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from envs.types import PASSWORD_MASK, Element, Observation
from traces.recorder import TraceRecorder
from traces.schema import TRACE_FILE, TraceError, fingerprint, fingerprint_lines, read_trace

EXAMPLES = Path(__file__).resolve().parents[2] / "traces" / "examples"
DEMO = EXAMPLES / "demo-order"


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "demo-order"
    shutil.copytree(DEMO, target)
    return target


def test_example_trace_reads_back_whole() -> None:
    trace = read_trace(DEMO)
    assert trace.task["task"] == {"kind": "url", "id": "demo-order", "start_url": "bundled:demo",
                                  "goal": trace.goal}
    assert [s["choice"] for s in trace.executed_steps()] == [
        "fill('e4', '2')", "select_option('e5', 'Sand')", "click('e12')",
        "send_msg_to_user('Added 2 × Sand notebook to your cart.')"]
    assert trace.end is not None and trace.end["stop_reason"] == "answer"
    # Every call's prompt is stored once, and the last observation (the same page) only by reference.
    assert all(call["prompt_hash"] in trace.prompts for call in trace.calls)
    lines = [json.loads(line) for line in (DEMO / TRACE_FILE).read_text().splitlines()]
    assert len([e for e in lines if e["type"] == "prompt"]) == len(trace.prompts)
    assert lines_with(lines, "observation")[-1]["elements_from"] == 3
    assert trace.observation(4).elements == trace.observation(3).elements


def lines_with(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def test_a_line_cut_off_mid_write_is_left_out_and_named(demo_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = demo_copy / TRACE_FILE
    data = file.read_bytes()
    count = len(data.splitlines())
    # A kill cut the end event inside its first multi-byte character: no newline, half a UTF-8 sequence.
    end = data.rindex(b"\n", 0, len(data) - 1) + 1
    file.write_bytes(data[:end] + data[end:][: data[end:].index("×".encode()) + 1])
    trace = read_trace(demo_copy)
    assert trace.end is None and len(trace.executed_steps()) == 4  # everything before the cut line
    assert f"line {count} is cut off" in caplog.text


def test_a_byte_that_is_not_utf8_is_reported_not_fatal(demo_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = demo_copy / TRACE_FILE
    lines = file.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"goal": "', b'"goal": "\xff', 1)
    file.write_bytes(b"".join(lines))
    trace = read_trace(demo_copy)
    assert trace.goal.startswith("\ufffd") and trace.end is not None
    assert "line 2: bytes that are not UTF-8" in caplog.text


@pytest.mark.parametrize(("change", "problem"), [
    (lambda task: task.pop("config"), r"line 1: 'task' event: field 'config': Field required"),
    (lambda task: task.update(config="dreamer"), r"line 1: 'task' event: field 'config': .*, got 'dreamer'"),
    (lambda task: task["config"].update(k="3"), r"line 1: 'task' event: field 'config.k': .*, got '3'"),
    (lambda task: task["task"].pop("start_url"), r"line 1: 'task' event: field 'task.start_url': Field required"),
])
def test_a_task_event_missing_a_field_or_of_the_wrong_type_names_the_field(demo_copy: Path, change, problem) -> None:
    file = demo_copy / TRACE_FILE
    first, rest = file.read_text().split("\n", 1)
    task = json.loads(first)
    change(task)
    file.write_text(json.dumps(task) + "\n" + rest)
    with pytest.raises(TraceError, match=problem):
        read_trace(demo_copy)


def test_a_trace_of_a_default_run_reads_back(demo_copy: Path) -> None:
    # The recorder writes what PlannerConfig holds: horizon None means the strategy's default depth.
    file = demo_copy / TRACE_FILE
    first, rest = file.read_text().split("\n", 1)
    task = json.loads(first)
    task["config"]["horizon"] = None
    file.write_text(json.dumps(task) + "\n" + rest)
    assert read_trace(demo_copy).task["config"]["horizon"] is None


def test_a_corrupted_line_is_named(demo_copy: Path) -> None:
    file = demo_copy / TRACE_FILE
    lines = file.read_text().splitlines(keepends=True)
    lines[4] = lines[4][:30] + "#garbage#" + lines[4][30:]
    file.write_text("".join(lines))
    with pytest.raises(TraceError, match=r"trace.jsonl, line 5: not a JSON event"):
        read_trace(demo_copy)


def test_an_event_of_unknown_type_or_a_newer_schema_is_refused(demo_copy: Path) -> None:
    file = demo_copy / TRACE_FILE
    lines = file.read_text().splitlines(keepends=True)
    file.write_text("".join(lines[:3] + ['{"type": "nonsense"}\n'] + lines[3:]))
    with pytest.raises(TraceError, match=r"line 4: not a trace event \(type 'nonsense'"):
        read_trace(demo_copy)
    header = json.loads(lines[0]) | {"schema_version": 99}
    file.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    with pytest.raises(TraceError, match="line 1: trace schema version 99"):
        read_trace(demo_copy)


def page(*texts: str, value: str | None = None) -> Observation:
    elements = [Element(None, "text", t) for t in texts] + [Element("e1", "textbox", "Name", value=value)]
    return Observation(url="http://x/", title="T", elements=elements)


def test_fingerprint_ignores_clocks_and_counters_but_not_real_changes() -> None:
    base = page("Updated 10:41:07 · 2024-05-01", "3 s elapsed", "Cart: 1 item")
    ticking = page("Updated 10:41:09 · 2024-05-02", "5 s elapsed", "Cart: 1 item")
    assert fingerprint(base) == fingerprint(ticking)
    assert fingerprint(base) != fingerprint(page("Updated 10:41:07 · 2024-05-01", "3 s elapsed", "Cart: 2 items"))
    assert fingerprint(base) != fingerprint(page("Updated 10:41:07 · 2024-05-01", "3 s elapsed", "Cart: 1 item",
                                                 value="Bob"))
    assert "[e1] textbox 'Name'" in fingerprint_lines(base)


def test_recorder_masks_a_password_found_late_in_lines_already_written(tmp_path: Path) -> None:
    secret = "hunter2-S3cret"
    obs = Observation(url="http://x/", title="Sign in", elements=[
        Element("e1", "textbox", "Password", value=PASSWORD_MASK, states=["type=password"])])
    with TraceRecorder(tmp_path, screenshots=False) as recorder:
        recorder.start(f"Sign in with the password {secret}")  # the goal names it before anyone types it
        call = {"role": "policy", "model": "m", "messages": [{"role": "user", "content": f"type {secret}"}],
                "answers": [f"fill('e1', '{secret}')"], "usage": {"total_tokens": 0}, "started_at": 0.0}
        recorder.note_password_fills([f"fill('e1', '{secret}')"], obs)
        recorder.calls([call], 1)
        recorder.step({"step": 1, "choice": f"fill('e1', '{secret}')"}, 0, None)
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    assert secret not in written
    assert f"fill('e1', '{PASSWORD_MASK}')" in written
    events = [json.loads(line) for line in (tmp_path / TRACE_FILE).read_text().splitlines()]
    assert events[0]["goal"] == f"Sign in with the password {PASSWORD_MASK}"
    # The call still finds its prompt under the hash of the masked text.
    prompt = next(e for e in events if e["type"] == "prompt")
    assert next(e for e in events if e["type"] == "llm_call")["prompt_hash"] == prompt["hash"]
