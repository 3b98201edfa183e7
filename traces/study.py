"""The index of a run directory (RUN/report.html): one row per task, one column per strategy, each cell
the task's outcome under that strategy (success, steps, tokens, seconds, stop reason, the evaluator's
verdict) linked to its report; for an eval, the summary table and the compute frontier below it, so
strategies can be compared task by task.

An eval's cells come from its results.jsonl (the runner's record: an oracle task has no trace but has
a result), with the evaluator's explanation from each task's result.json. A `forethought run`
directory's come from its traces. The summary and the frontier plot are given by the caller
(`forethought show` computes them with agent/evaluation, which traces may not import), or read from
summary.json and frontier.svg.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from traces.html import environment
from traces.layout import REPORT_FILE, RESULT_FILE, RESULTS_FILE, RUN_FILE, is_eval_run

SUCCESS, FAILURE, ERROR, UNSCORED = "success", "failure", "error", "unscored"


def write_index(run_dir: Path, reports: dict[Path, dict[str, Any]], summary: dict[str, Any] | None = None,
                frontier_svg: str | None = None) -> Path:
    """Write RUN/report.html. `reports`: task directory -> the outcome its trace tells (traces/report.py
    summary) for every task report just written."""
    if is_eval_run(run_dir):
        columns, rows = _eval_cells(run_dir, reports)
        summary = summary if summary is not None else _read_json(run_dir / "summary.json")
        if frontier_svg is None and (run_dir / "frontier.svg").is_file():
            frontier_svg = (run_dir / "frontier.svg").read_text(encoding="utf-8")
    else:
        columns, rows = _run_cells(run_dir, reports)
        summary, frontier_svg = None, None
    cells = [cell for row in rows for cell in row["cells"].values()]
    totals = {key: sum(cell.get(key) or 0 for cell in cells) for key in ("steps", "tokens", "seconds", "cost")}
    page = environment().get_template("index.html").render(
        run=run_dir.resolve().name, columns=columns, rows=rows, totals=totals, tally=_tally(columns, rows),
        summary=summary, frontier=_svg_uri(frontier_svg) if frontier_svg else None)
    out = run_dir / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out


def eval_size(run_dir: Path) -> int:
    """How many (strategy, task) runs an eval run directory has results for."""
    return len({(r.get("strategy"), r.get("task_id")) for r in _json_lines(run_dir / RESULTS_FILE)})


def _eval_cells(run_dir: Path, reports: dict[Path, dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    plan = _read_json(run_dir / RUN_FILE) or {}
    latest = {(r.get("strategy"), r.get("task_id")): r for r in _json_lines(run_dir / RESULTS_FILE)}
    strategies = list(plan.get("strategies") or dict.fromkeys(s for s, _t in latest))
    tasks = list(plan.get("tasks") or dict.fromkeys(t for _s, t in latest))
    rows = []
    for task_id in tasks:
        cells, goal = {}, ""
        for strategy in strategies:
            task_dir = run_dir / strategy / task_id
            record = latest.get((strategy, task_id))
            result = _read_json(task_dir / RESULT_FILE) or {}
            traced = reports.get(task_dir) or {}
            goal = goal or traced.get("goal") or result.get("goal") or ""
            if record is None:
                cells[strategy] = {"status": "not run", "link": None}
                continue
            cells[strategy] = _cell(run_dir, task_dir, record["status"], record, result)
        rows.append({"task_id": task_id, "goal": goal, "cells": cells})
    return strategies, rows


def _run_cells(run_dir: Path, reports: dict[Path, dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    by_task: dict[str, dict[str, Any]] = {}
    columns: dict[str, None] = {}
    for task_dir, outcome in reports.items():
        strategy = outcome["strategy"]
        columns[strategy] = None
        result = _read_json(task_dir / RESULT_FILE) or {}
        if outcome["stop_reason"] in ("error", "llm_error", "timeout", "browser_crashed"):
            status = ERROR
        elif outcome["kind"] == "url" and "evaluation" not in result:
            status = UNSCORED  # a page and a goal: nothing says whether it was done
        else:
            status = SUCCESS if outcome["reward"] > 0 else FAILURE
        row = by_task.setdefault(outcome["task_id"], {"task_id": outcome["task_id"], "goal": outcome["goal"],
                                                      "cells": {}})
        row["cells"][strategy] = _cell(run_dir, task_dir, status, outcome, result)
    return list(columns), list(by_task.values())


def _cell(run_dir: Path, task_dir: Path, status: str, record: dict[str, Any],
          result: dict[str, Any]) -> dict[str, Any]:
    """What a cell shows of one task run, linked to its report (or, without a trace, its result.json)."""
    page = next((task_dir / name for name in (REPORT_FILE, RESULT_FILE) if (task_dir / name).is_file()), None)
    evaluation = result.get("evaluation") or {}
    verdict = evaluation.get("explanation") or record.get("error") or result.get("error") or ""
    return {"status": status, "link": page.relative_to(run_dir).as_posix() if page else None,
            "steps": record.get("steps", 0), "tokens": record.get("tokens", 0), "seconds": record.get("seconds", 0.0),
            "cost": record.get("cost_usd", record.get("cost", 0.0)), "stop_reason": record.get("stop_reason") or "",
            "answer": record.get("answer"), "score": record.get("score", record.get("reward")), "verdict": verdict}


def _tally(columns: list[str], rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per column: how many tasks succeeded, failed, errored, and how many were scored."""
    tally = {}
    for column in columns:
        statuses = [row["cells"][column]["status"] for row in rows if column in row["cells"]]
        counts = {status: statuses.count(status) for status in (SUCCESS, FAILURE, ERROR, UNSCORED)}
        tally[column] = counts | {"scored": counts[SUCCESS] + counts[FAILURE]}
    return tally


def _svg_uri(svg: str) -> str:
    """The plot as an image of the page (an <img>: nothing in the SVG runs)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """results.jsonl's records; a line cut off by a kill is left out, as the runner reads it."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
