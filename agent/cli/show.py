"""`forethought show DIR`: write a run's report.html and print its path. On an eval run directory the
index is a study view: a row per task, a column per strategy, with the summary table and the compute
frontier (both computed here by agent/evaluation, as `forethought eval` prints and plots them)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agent.cli.common import UserError
from agent.evaluation.flops import add_flops
from agent.evaluation.frontier import frontier_svg
from agent.evaluation.summary import read_records, summarize
from traces.layout import RESULTS_FILE, RUN_FILE, is_eval_run
from traces.report import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write report.html for a task directory (runs/<run-id>/<task-id>), or for every task "
                          "of a run directory plus an index page; on an eval's --out the index has a column per "
                          "strategy, the summary table and the compute frontier. Screenshots are embedded, so "
                          "a report opens on its own.")
    parser.add_argument("path", metavar="RUN_OR_TASK_DIR")
    parser.set_defaults(handler=show_command)


async def show_command(args: argparse.Namespace) -> int:
    path = Path(args.path)
    summary, plot = study_figures(path) if is_eval_run(path) else (None, None)
    try:
        print(write_report(path, summary, plot))
    except FileNotFoundError as exc:  # a TraceError (a bad trace) is a user error too; `main` prints it
        raise UserError(str(exc)) from None
    return 0


def study_figures(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """An eval run's summary from its results as they are now (an interrupted run has no summary.json),
    and its frontier plot when it compares strategies."""
    try:
        plan = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{run_dir / RUN_FILE} is not valid JSON: {exc}") from None
    records = read_records(run_dir / RESULTS_FILE)
    strategies = plan.get("strategies") or list(dict.fromkeys(r["strategy"] for r in records))
    tasks = plan.get("tasks") or list(dict.fromkeys(r["task_id"] for r in records))
    summary = summarize(records, {"suite": plan.get("suite", "?"), "agent": plan.get("agent", "?"),
                                  "strategies": strategies, "tasks": tasks,
                                  "skipped_without_oracle": plan.get("skipped_without_oracle", [])})
    if len(strategies) < 2:
        return summary, None
    add_flops(summary, [run_dir])
    return summary, frontier_svg(summary)
