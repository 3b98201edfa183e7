"""Picking up a killed run: how far its trace got, and the trace cut back to a finished step.

A run killed with SIGKILL leaves a trace whose lines are all complete except perhaps the last one
(every event is flushed as written), which may end in half a character; that line is dropped. The
last finished step is the last `step` event whose action ran; whatever follows it belongs to the
step that was cut short, which the resumed run does again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traces.recorder import STEPS_FILE
from traces.schema import TRACE_FILE, Trace, TraceError, complete_lines, read_trace


@dataclass
class Progress:
    trace: Trace  # the events as far as they are complete
    steps: int  # real actions finished and recorded
    ended: dict[str, Any] | None  # the `end` event of a run that finished (not one that was interrupted)


def read_progress(task_dir: str | Path) -> Progress:
    """How far the run in `task_dir` got. A cut-off last line is dropped from the file first."""
    file = Path(task_dir) / TRACE_FILE
    if not file.is_file():
        raise TraceError(f"nothing to resume in {task_dir}: it holds no {TRACE_FILE}")
    lines = complete_lines(file)
    _rewrite(file, lines)
    trace = read_trace(file)
    ended = trace.end if trace.end and trace.end.get("stop_reason") != "interrupted" else None
    return Progress(trace, len(trace.executed_steps()), ended)


def cut_trace(task_dir: str | Path, steps: int) -> Trace:
    """Keep the trace (and steps.jsonl) up to the end of the `steps`-th executed step, or up to the
    first observation when `steps` is 0; the rest is the step being redone. Returns the trace kept."""
    task_dir = Path(task_dir)
    file = task_dir / TRACE_FILE
    lines = complete_lines(file)
    keep, executed, step_events = 0, 0, 0
    for number, line in enumerate(lines, 1):
        event = json.loads(line)
        kind = event.get("type")
        if steps == 0 and kind == "observation":
            keep = number
            break
        if kind == "step":
            step_events += 1
            if event.get("choice") and event.get("after") is not None:
                executed += 1
                if executed == steps:
                    keep = number
                    break
    if steps and executed < steps:
        raise TraceError(f"{file} records {executed} finished steps, fewer than the {steps} to keep")
    _rewrite(file, lines[:keep])
    steps_file = task_dir / STEPS_FILE
    if steps_file.is_file():
        _rewrite(steps_file, complete_lines(steps_file)[:step_events])
    return read_trace(file)


def _rewrite(file: Path, lines: list[str]) -> None:
    temporary = file.with_suffix(".cut")
    temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    temporary.replace(file)
