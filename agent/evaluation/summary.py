"""What an eval's records add up to: results.jsonl read back, per-strategy success and compute
(summary.json, summary.csv), the table `forethought eval` prints, and its progress meanwhile."""
from __future__ import annotations

import atexit
import csv
import json
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import rich.console
import rich.progress
import rich.text

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


# The printed table's columns, each with its width in the plain text table.
TABLE_COLUMNS = (("strategy", 10), ("tasks", 5), ("success", 16), ("failed", 6), ("errors", 6), ("steps", 6),
                 ("tokens", 8), ("cost $", 8), ("s/task", 7))


def table_rows(summary: dict[str, Any]) -> tuple[str, list[str], list[list[str]], list[str]]:
    """The summary table's title, header, a row of cells per strategy, and the notes under it."""
    rows = []
    for strategy, row in summary["strategies"].items():
        rate = "-" if row["success_rate"] is None else \
            f"{100 * row['success_rate']:5.1f}% ± {100 * row['std_error']:4.1f}%"
        rows.append([strategy, str(row["finished"]), rate, str(row["failures"]), str(row["errors"]),
                     _num(row["mean_steps"], ".1f"), _num(row["mean_tokens"], ".0f"),
                     _num(row["mean_cost_usd"], ".4f"), _num(row["mean_seconds"], ".1f")])
    notes = ["success over tasks without errors (± standard error); steps, tokens, cost, seconds: mean per task"]
    for strategy, row in summary["strategies"].items():
        if row["errored_tasks"]:
            notes.append(f"{strategy}: errors in {id_range(row['errored_tasks'])} (see results.jsonl)")
    if summary["skipped_without_oracle"]:
        notes.append(f"skipped (no oracle): {len(summary['skipped_without_oracle'])} task(s)")
    return f"{summary['suite']} suite, {summary['agent']} agent", [name for name, _ in TABLE_COLUMNS], rows, notes


def format_table(summary: dict[str, Any]) -> str:
    """Strategies side by side, as plain text: success against the compute spent per task."""
    title, header, rows, notes = table_rows(summary)

    def line(cells: list[str]) -> str:
        return " ".join(cell.ljust(width) if index == 0 else cell.rjust(width)
                        for index, (cell, (_, width)) in enumerate(zip(cells, TABLE_COLUMNS)))

    head = line(header)
    return "\n".join([title, head, "-" * len(head), *map(line, rows), *notes])


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


PLAIN_BAR = 20  # characters of the bar in plain lines


class Progress:
    """How far an eval is, on `stream`: on a terminal a live bar (rich) from 0/N with the success rate so
    far, the time taken and the time left; otherwise a plain line at once (0/N) and one per finished task."""

    def __init__(self, total: int, stream: TextIO, already: int = 0) -> None:
        self.total, self.stream, self.already = total, stream, already
        self.counts = {SUCCESS: 0, FAILURE: 0, ERROR: 0}
        self.started = time.perf_counter()
        self.bar: rich.progress.Progress | None = None
        if getattr(stream, "isatty", lambda: False)():
            self.bar = rich.progress.Progress(
                rich.progress.TextColumn("{task.description}"), rich.progress.BarColumn(),
                rich.progress.MofNCompleteColumn(), rich.progress.TextColumn("{task.fields[tally]}"),
                rich.progress.TimeElapsedColumn(), _TimeLeft(), rich.progress.TextColumn("{task.fields[last]}"),
                console=rich.console.Console(file=stream), redirect_stdout=sys.stdout.isatty())
            self.task = self.bar.add_task(f"eval{self._before()}", total=total, tally=self.tally(), last="")
            self.bar.start()
            atexit.register(self.finish)  # an eval cut short (Ctrl-C, an error) gives the terminal its cursor back
        else:
            self._line()

    def update(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        last = f"last {record['task_id']}: {record['status']}"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, tally=self.tally(), last=last)
        else:
            self._line(last)

    def tally(self) -> str:
        """Successes so far over the tasks scored (errors apart, as in the summary)."""
        scored = self.counts[SUCCESS] + self.counts[FAILURE]
        rate = f"{100 * self.counts[SUCCESS] / scored:.0f}%" if scored else "-"
        return f"success {rate}  ok {self.counts[SUCCESS]}  fail {self.counts[FAILURE]}  err {self.counts[ERROR]}"

    def _before(self) -> str:
        return f" (+{self.already} done before)" if self.already else ""

    def _line(self, last: str = "") -> None:
        done = sum(self.counts.values())
        elapsed = time.perf_counter() - self.started
        filled = PLAIN_BAR * done // max(self.total, 1)
        eta = f"{elapsed / done * (self.total - done):.0f}s" if done else "?"
        self.stream.write(f"[{'#' * filled}{'.' * (PLAIN_BAR - filled)}] {done}/{self.total}{self._before()}  "
                          f"{self.tally()}  {elapsed:.0f}s  eta {eta}" + (f"  {last}" if last else "") + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()  # leaves the finished bar on the screen; stopping twice does nothing


class _TimeLeft(rich.progress.ProgressColumn):
    """The time left at the mean pace so far (rich's own estimate looks back only 30 s: a task can take minutes)."""

    def render(self, task: rich.progress.Task) -> rich.text.Text:
        if not task.completed or task.total is None or task.elapsed is None:
            return rich.text.Text("eta ?", style="progress.remaining")
        left = task.elapsed / task.completed * (task.total - task.completed)
        return rich.text.Text(f"eta {int(left) // 60}:{int(left) % 60:02d}", style="progress.remaining")
