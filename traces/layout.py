"""Where things are in a run directory. A task directory holds trace.jsonl; `forethought run` puts its
tasks in RUN/<task-id>/, `forethought eval` in RUN/<strategy>/<task-id>/ beside RUN/run.json and
RUN/results.jsonl. `show`, `replay` and `wm-eval` take either kind of directory."""
from __future__ import annotations

from pathlib import Path

from traces.schema import TRACE_FILE

RUN_FILE = "run.json"  # what an eval ran: suite, agent, strategies, tasks
RESULTS_FILE = "results.jsonl"  # one record per finished (strategy, task)
RESULT_FILE = "result.json"  # a task's outcome (with its evaluator's verdict, in an eval)
REPORT_FILE = "report.html"  # `forethought show`: a task's page, and a run directory's index


def is_eval_run(path: Path) -> bool:
    return (path / RUN_FILE).is_file() and (path / RESULTS_FILE).is_file()


def task_dirs(path: str | Path) -> list[Path]:
    """The task directories `path` stands for: itself when it holds a trace, else every task of the run
    directory (RUN/<task-id>/ or, for an eval, RUN/<strategy>/<task-id>/), in order. FileNotFoundError
    when there are none."""
    path = Path(path)
    found = traced_dirs(path)
    if not found:
        if is_eval_run(path):
            why = "its tasks recorded no trace (the oracle agent records none)"
        else:
            why = "no such directory" if not path.is_dir() else f"no {TRACE_FILE} in it or in its task directories"
        raise FileNotFoundError(f"{path}: {why}; pass a task directory (runs/<run-id>/<task-id>) or a run "
                                "directory (runs/<run-id>, or an eval's --out) holding traces")
    return found


def traced_dirs(path: Path) -> list[Path]:
    """`path` when it holds a trace, else its tasks that do (none, too)."""
    if (path / TRACE_FILE).is_file():
        return [path]
    pattern = f"*/*/{TRACE_FILE}" if is_eval_run(path) else f"*/{TRACE_FILE}"
    return sorted(p.parent for p in path.glob(pattern))
