"""Snell's question, measured here: does a small model that plans beat a bigger one that reacts, at
matched compute? (Snell et al. 2024; issue #14, item 5.)

Reads eval runs of the same tasks with different models, one per model (each a `forethought eval`
run directory or a `bench/compute_frontier.py --out` directory), and puts every (model, strategy) on
one footing: success ± standard error against estimated inference FLOPs, seconds and tokens per task.

    python bench/snell.py RUN_DIR [RUN_DIR ...] [--out DIR]
    python bench/snell.py --quick [--out DIR]

FLOPs per task = 2 x parameters x tokens computed, per role (agent/evaluation/flops.py): prompt
tokens found in the server's prefix cache are counted apart (reported, not charged: their KV is
reused). Only catalogue models (`--model local:NAME`) have a parameter count; any other model's
FLOPs are "-". Each small model's planning strategy is set against each bigger model's reactive run:
success difference (in combined standard errors) and FLOPs and seconds ratios.

Writes DIR/snell.md (the table and comparisons, as printed), snell.csv, snell.svg and snell.png
(headless Chromium; skipped with a note without one); DIR defaults to runs/snell-<timestamp>.
--quick fabricates two tiny runs (two models x reactive and dreamer, four tasks; made-up numbers)
in DIR/fabricated and builds the table and plot from them: a smoke test of this script, seconds,
not a measurement.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import STRATEGIES  # noqa: E402
from agent.evaluation.flops import TaskFlops, eval_run_dirs, mean_flops, records_with_flops  # noqa: E402
from agent.evaluation.frontier import COLORS, figure_size, frontier_svg, render_png  # noqa: E402
from agent.evaluation.summary import summarize  # noqa: E402
from agent.llm.catalogue import find_entry  # noqa: E402
from envs.browser import BrowserNotFound  # noqa: E402

MEASURES = (("mean_flops", "estimated FLOPs per task"), ("mean_seconds", "mean seconds per task"),
            ("mean_tokens", "mean tokens per task"))
CSV_FIELDS = ("model", "parameters", "strategy", "tasks", "successes", "errors", "success_rate", "std_error",
              "mean_flops", "mean_cached_tokens", "mean_tokens", "mean_seconds")
UNKNOWN_MODEL = "unknown model"  # a task without a trace, or without a call


class SnellError(Exception):
    """A run directory that cannot be read: printed as one line, exit 2."""


@dataclass
class Series:
    """One (model, strategy) over its tasks."""

    model: str
    parameters: int | None
    strategy: str
    row: dict[str, Any]  # summarize()'s row, with mean_flops and mean_cached_tokens
    task_ids: frozenset[str]

    @property
    def name(self) -> str:
        return f"{size_label(self.model, self.parameters)} {self.strategy}"


def size_label(model: str, parameters: int | None) -> str:
    """135M, 0.5B, 1.5B for catalogue models; the model itself otherwise."""
    if parameters is None:
        return model
    return f"{parameters / 1e9:.1f}B" if parameters >= 4e8 else f"{parameters / 1e6:.0f}M"


def model_of(flops: TaskFlops | None) -> str:
    """The model a task ran with: one name, or role=model for each role when they differ."""
    models = flops.models() if flops else {}
    if not models:
        return UNKNOWN_MODEL
    if len(set(models.values())) == 1:
        return next(iter(models.values()))
    return ",".join(f"{role}={model}" for role, model in models.items())


def collect(paths: list[Path]) -> tuple[list[Series], list[str]]:
    """Every (model, strategy) in the runs at `paths`, smallest model first; and notes on what may make
    the comparison unfair (tasks that differ, a task counted twice)."""
    measured = []
    for path in paths:
        run_dirs = eval_run_dirs(path)
        if not run_dirs:
            raise SnellError(f"no results.jsonl in {path} or its subdirectories: give a `forethought eval` "
                             "run directory or a bench/compute_frontier.py --out directory")
        measured += records_with_flops(run_dirs)
    groups: dict[tuple[str, str], list[tuple[dict[str, Any], TaskFlops | None]]] = {}
    for record, flops in measured:
        groups.setdefault((model_of(flops), record["strategy"]), []).append((record, flops))
    notes, series = [], []
    for (model, strategy), members in groups.items():
        counts = Counter(record["task_id"] for record, _flops in members)
        if twice := sorted(t for t, n in counts.items() if n > 1):
            notes.append(f"{model} {strategy}: {len(twice)} task(s) in more than one run, the last counted "
                         f"({', '.join(twice[:3])}{', ...' if len(twice) > 3 else ''})")
        latest = {record["task_id"]: (record, flops) for record, flops in members}
        plan = {"suite": "", "agent": "planner", "skipped_without_oracle": [], "strategies": [strategy],
                "tasks": sorted(latest)}
        row = summarize([record for record, _f in latest.values()], plan)["strategies"][strategy]
        row["mean_flops"] = mean_flops(flops for _r, flops in latest.values())
        cached = [flops.cached_tokens for _r, flops in latest.values() if flops is not None]
        row["mean_cached_tokens"] = sum(cached) / len(cached) if len(cached) == len(latest) else None
        entry = find_entry(model)
        series.append(Series(model, entry.parameters if entry else None, strategy, row, frozenset(latest)))
    order = {s: i for i, s in enumerate(STRATEGIES)}
    series.sort(key=lambda s: (s.parameters is None, s.parameters or 0, s.model, order.get(s.strategy, 99)))
    task_sets = {s.task_ids for s in series}
    if len(task_sets) > 1:
        common = frozenset.intersection(*task_sets)
        notes.append(f"the series ran different tasks ({len(common)} in common of {len(frozenset.union(*task_sets))}):"
                     " success rates are not on the same tasks")
    return series, notes


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _rate(row: dict[str, Any]) -> str:
    if row["success_rate"] is None:
        return "-"
    return f"{100 * row['success_rate']:.1f}% ± {100 * row['std_error']:.1f}"


def markdown_table(series: list[Series]) -> str:
    lines = ["| model | parameters | strategy | tasks | success ± s.e. | FLOPs/task | cached tokens/task "
             "| tokens/task | s/task |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for s in series:
        row = s.row
        lines.append(f"| {s.model} | {size_label(s.model, s.parameters) if s.parameters else '-'} | {s.strategy} "
                     f"| {row['finished']} | {_rate(row)} | {_num(row['mean_flops'], '.3g')} "
                     f"| {_num(row['mean_cached_tokens'], '.0f')} | {_num(row['mean_tokens'], '.0f')} "
                     f"| {_num(row['mean_seconds'], '.1f')} |")
    return "\n".join(lines)


def _ratio(mine: float | None, theirs: float | None) -> str:
    return "-" if mine is None or not theirs else f"{mine / theirs:.2f}x"


def comparisons(series: list[Series]) -> list[str]:
    """Each smaller model's planning strategies against each bigger model's reactive run."""
    lines = []
    for big in series:
        if big.strategy != "reactive" or big.parameters is None:
            continue
        for small in series:
            if small.parameters is None or small.parameters >= big.parameters or small.strategy == "reactive":
                continue
            a, b = small.row, big.row
            if a["success_rate"] is None or b["success_rate"] is None:
                continue
            diff = a["success_rate"] - b["success_rate"]
            spread = math.hypot(a["std_error"], b["std_error"])
            verdict = "higher" if diff > spread else "lower" if diff < -spread else "within one s.e."
            lines.append(f"{small.name} vs {big.name}: success {100 * a['success_rate']:.1f}% vs "
                         f"{100 * b['success_rate']:.1f}% ({100 * diff:+.1f} points, {verdict}), "
                         f"FLOPs {_ratio(a['mean_flops'], b['mean_flops'])}, "
                         f"seconds {_ratio(a['mean_seconds'], b['mean_seconds'])}")
    return lines


def write_csv(path: Path, series: list[Series]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for s in series:
            writer.writerow({**s.row, "model": s.model, "parameters": s.parameters, "strategy": s.strategy})


def plot_svg(series: list[Series]) -> str:
    """The frontier's panels over every (model, strategy), one colour per model; the dashed Pareto
    front crosses models: where it passes through a small model's planning, planning paid."""
    models = list(dict.fromkeys(s.model for s in series))
    colors = {s.name: COLORS[models.index(s.model) % len(COLORS)] for s in series}
    summary = {"strategies": {s.name: s.row for s in series}}
    tasks = max((s.row["finished"] for s in series), default=0)
    title = f"Success against compute, {len(models)} model(s) x strategies, {tasks} task(s) (dashed: Pareto front)"
    return frontier_svg(summary, MEASURES, colors, title)


async def write_outputs(out: Path, series: list[Series], report: str) -> str | None:
    """snell.md, .csv, .svg and .png into `out`; returns a note when the PNG could not be rendered."""
    (out / "snell.md").write_text(report + "\n", encoding="utf-8")
    write_csv(out / "snell.csv", series)
    svg = plot_svg(series)
    (out / "snell.svg").write_text(svg, encoding="utf-8")
    png = out / "snell.png"
    png.unlink(missing_ok=True)
    try:
        await render_png(svg, png, size=figure_size(MEASURES))
    except BrowserNotFound as exc:
        return f"snell.png not written: {exc}"
    return None


# ------------------------------------------------------------------------------------------ --quick


FABRICATED = {  # model -> strategy -> (successes of 4, prompt, cached, completion tokens, seconds) per task
    "smollm2-135m": {"reactive": (1, 900, 300, 60, 3.0), "dreamer": (2, 6000, 3000, 700, 20.0)},
    "qwen2.5-coder-1.5b": {"reactive": (2, 900, 300, 60, 20.0), "dreamer": (3, 6000, 3000, 700, 150.0)},
}


def fabricate_runs(root: Path) -> list[Path]:
    """Two eval runs in the shape `forethought eval` writes (results.jsonl; <strategy>/<task>/trace.jsonl
    with its task and llm_call events), made-up numbers: --quick's input."""
    runs = []
    for model, strategies in FABRICATED.items():
        run = root / model
        records = []
        for strategy, (successes, prompt, cached, completion, seconds) in strategies.items():
            for index in range(4):
                task_id = f"miniwob.fabricated-{index}"
                usage = {"prompt_tokens": prompt, "cached_tokens": cached, "completion_tokens": completion}
                events = [{"type": "task", "models": {"policy": {"model": f"local:{model}"}}},
                          {"type": "llm_call", "role": "policy", "model": model, "usage": usage}]
                (run / strategy / task_id).mkdir(parents=True)
                (run / strategy / task_id / "trace.jsonl").write_text(
                    "".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
                records.append({"task_id": task_id, "suite": "miniwob", "strategy": strategy,
                                "status": "success" if index < successes else "failure", "steps": 1,
                                "tokens": prompt + completion, "calls": 1, "cost_usd": 0.0, "seconds": seconds})
        (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        runs.append(run)
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR",
                        help="eval run directories (or compute_frontier --out directories), one per model")
    parser.add_argument("--out", type=Path, help="where to write snell.md/.csv/.svg/.png "
                                                 "(default: runs/snell-<timestamp>)")
    parser.add_argument("--quick", action="store_true",
                        help="fabricate two tiny runs and build the table and plot from them (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick == bool(args.runs):
        parser.error("give the run directories, or --quick (not both)")
    args.out = args.out or Path("runs") / time.strftime("snell-%Y%m%d-%H%M%S")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        fabricated = args.out / "fabricated"
        if fabricated.exists():
            print(f"error: {fabricated} exists: --quick writes its made-up runs there; give a new --out",
                  file=sys.stderr)
            return 2
        args.runs = fabricate_runs(fabricated)
        print(f"--quick: made-up runs in {fabricated} (a smoke test of this script, not a measurement)")
    try:
        series, notes = collect(args.runs)
    except SnellError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"Snell table: {len(series)} series from {', '.join(str(p) for p in args.runs)}", "",
             markdown_table(series), "",
             "success over tasks without errors (± standard error); FLOPs: estimated, 2 x parameters x tokens "
             "computed (cached prompt tokens apart, not charged); - = unknown (a model outside the catalogue)"]
    if compared := comparisons(series):
        lines += ["", "small model planning vs bigger model reacting:", *(f"- {line}" for line in compared)]
    lines += [f"note: {note}" for note in notes]
    report = "\n".join(lines)
    print(report)
    note = asyncio.run(write_outputs(args.out, series, report))
    print(f"\nwritten: {args.out / 'snell.md'}, snell.csv, snell.svg" + (f"; {note}" if note else ", snell.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
