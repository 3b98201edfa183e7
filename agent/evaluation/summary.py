"""What an eval's records add up to: results.jsonl read back, per-strategy success and compute
(summary.json, summary.csv), the table `forethought eval` prints, and its progress line meanwhile."""
from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from agent.evaluation.suites import id_range

# How a task ended: an error (timeout, harness or LLM trouble) is counted apart from the success rate.
SUCCESS, FAILURE, ERROR = "success", "failure", "error"
CSV_FIELDS = ("strategy", "tasks", "finished", "successes", "failures", "errors", "success_rate", "std_error",
              "mean_steps", "mean_tokens", "mean_calls", "mean_cost_usd", "mean_seconds")


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file a run appends to (results.jsonl, trace.jsonl, steps.jsonl); none
    when it is missing. A line cut off when the run was killed is skipped."""
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def read_records(path: Path) -> list[dict[str, Any]]:
    """results.jsonl, the last record of each (strategy, task) winning; a torn last line is ignored
    (that task runs again)."""
    latest = {(record["strategy"], record["task_id"]): record for record in json_lines(path)}
    return list(latest.values())


def summarize(records: list[dict[str, Any]], plan: dict[str, Any],
              made: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per strategy: success rate over the scored tasks (± standard error), errors apart, and the
    mean steps, tokens, cost and seconds per task; with `made` (run.json: how the run was made) as "run"."""
    latest = {(r["strategy"], r["task_id"]): r for r in records}
    strategies: dict[str, Any] = {}
    for strategy in plan["strategies"]:
        rows = [latest[(strategy, t)] for t in plan["tasks"] if (strategy, t) in latest]
        scored = [r for r in rows if r["status"] != ERROR]
        successes = sum(r["status"] == SUCCESS for r in scored)
        rate = successes / len(scored) if scored else None
        strategies[strategy] = {
            "tasks": len(plan["tasks"]),
            "finished": len(rows),
            "successes": successes,
            "failures": len(scored) - successes,
            "errors": len(rows) - len(scored),
            "success_rate": rate,
            "std_error": math.sqrt(rate * (1 - rate) / len(scored)) if rate is not None else None,
            "mean_steps": _mean(r["steps"] for r in rows),
            "mean_tokens": _mean(r["tokens"] for r in rows),
            "mean_calls": _mean(r["calls"] for r in rows if "calls" in r),  # older runs' records have none
            "mean_cost_usd": _mean(r["cost_usd"] for r in rows),
            "mean_seconds": _mean(r["seconds"] for r in rows),
            "errored_tasks": [r["task_id"] for r in rows if r["status"] == ERROR],
        }
    summary = {"suite": plan["suite"], "agent": plan["agent"], "skipped_without_oracle": plan["skipped_without_oracle"],
               "strategies": strategies}
    return summary | ({"run": made} if made is not None else {})


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for strategy, row in summary["strategies"].items():
            writer.writerow({"strategy": strategy, **row})


def format_table(summary: dict[str, Any]) -> str:
    """Strategies side by side: success against the compute spent per task."""
    header = f"{'strategy':<10} {'tasks':>5} {'success':>16} {'failed':>6} {'errors':>6} " \
             f"{'steps':>6} {'tokens':>8} {'cost $':>8} {'s/task':>7}"
    lines = [f"{summary['suite']} suite, {summary['agent']} agent", header, "-" * len(header)]
    for strategy, row in summary["strategies"].items():
        rate = "-" if row["success_rate"] is None else \
            f"{100 * row['success_rate']:5.1f}% ± {100 * row['std_error']:4.1f}%"
        lines.append(
            f"{strategy:<10} {row['finished']:>5} {rate:>16} {row['failures']:>6} {row['errors']:>6} "
            f"{_num(row['mean_steps'], '.1f'):>6} {_num(row['mean_tokens'], '.0f'):>8} "
            f"{_num(row['mean_cost_usd'], '.4f'):>8} {_num(row['mean_seconds'], '.1f'):>7}")
    lines.append("success over tasks without errors (± standard error); steps, tokens, cost, seconds: mean per task")
    for strategy, row in summary["strategies"].items():
        if row["errored_tasks"]:
            lines.append(f"{strategy}: errors in {id_range(row['errored_tasks'])} (see results.jsonl)")
    if summary["skipped_without_oracle"]:
        lines.append(f"skipped (no oracle): {len(summary['skipped_without_oracle'])} task(s)")
    return "\n".join(lines)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class Progress:
    """One line on a stream: redrawn in place on a terminal, one line per finished task otherwise."""

    def __init__(self, total: int, stream: TextIO, already: int = 0, width: int = 20) -> None:
        self.total, self.stream, self.already, self.width = total, stream, already, width
        self.counts = {SUCCESS: 0, FAILURE: 0, ERROR: 0}
        self.started = time.perf_counter()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        done = sum(self.counts.values())
        elapsed = time.perf_counter() - self.started
        filled = self.width * done // max(self.total, 1)
        eta = elapsed / done * (self.total - done)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}"
                f"{f' (+{self.already} done before)' if self.already else ''}  ok {self.counts[SUCCESS]}"
                f"  fail {self.counts[FAILURE]}  err {self.counts[ERROR]}  {elapsed:.0f}s  eta {eta:.0f}s"
                f"  last {record['task_id']}: {record['status']}")
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
