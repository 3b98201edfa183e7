"""The compute frontier of a multi-strategy eval: success rate against the compute spent per task.

Written into the run directory after `forethought eval --strategy A,B,...`:
    frontier.csv   per strategy: success rate, standard error, mean tokens, calls, seconds, estimated
                   FLOPs and cached prompt tokens per task, and whether it is on the Pareto front of each
                   compute measure
    frontier.svg   one figure, four panels side by side: success (± standard error) against mean tokens,
                   mean LLM calls, mean seconds and mean estimated FLOPs per task (log scale); a labelled
                   point per strategy, the front drawn as a dashed line through its points
    frontier.png   the same figure rendered by headless Chromium (skipped, with a note, without one)

A strategy is on the front of a compute measure when no other strategy has at least its success rate
at no more compute, and is strictly better in one of the two. Point estimates decide it, not the error
bars; strategies tied on both numbers are both on the front. Strategies without a success rate (every
task an error) or without the measure are left out of that panel: FLOPs are known only for the model
catalogue's models (agent/evaluation/flops.py), so with any other model that panel stays empty.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from agent.evaluation.flops import add_flops, eval_run_dirs
from envs.browser import BrowserConfig, BrowserNotFound, BrowserSession

# (summary key, axis label), one panel each
COMPUTE_MEASURES = (
    ("mean_tokens", "mean tokens per task"),
    ("mean_calls", "mean LLM calls per task"),
    ("mean_seconds", "mean seconds per task"),
    ("mean_flops", "estimated FLOPs per task"),
)
LOG_MEASURES = ("mean_flops",)  # spans orders of magnitude across model sizes: a log axis
VALUE_FIELDS = ("success_rate", "std_error", "mean_tokens", "mean_calls", "mean_seconds", "mean_flops",
                "mean_cached_tokens")
CSV_FIELDS = ("strategy", *VALUE_FIELDS, "front_tokens", "front_calls", "front_seconds", "front_flops")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

PANEL_WIDTH, PANEL_HEIGHT, TITLE_HEIGHT = 340, 280, 34
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 58, 18, 30, 46
LABEL_CHAR_WIDTH = 6.5  # px per character of an 11 px label, about, to keep labels from overprinting


@dataclass
class FrontierFiles:
    csv: Path
    svg: Path
    png: Path | None  # None when it could not be rendered; `note` says why
    note: str | None
    fronts: dict[str, list[str]]  # compute measure -> strategies on its front, cheapest first


def pareto_front(points: dict[str, tuple[float | None, float | None]]) -> list[str]:
    """The strategies not dominated in (success, compute) -> higher success at lower compute is better;
    ordered by compute, cheapest first. Points with a None coordinate are not considered."""
    known = {name: (s, c) for name, (s, c) in points.items() if s is not None and c is not None}

    def dominated(name: str) -> bool:
        success, compute = known[name]
        return any(s >= success and c <= compute and (s > success or c < compute)
                   for other, (s, c) in known.items() if other != name)

    return sorted((n for n in known if not dominated(n)), key=lambda n: (known[n][1], -known[n][0], n))


def fronts_of(summary: dict[str, Any]) -> dict[str, list[str]]:
    """Per compute measure, the strategies on its Pareto front."""
    rows = summary["strategies"]
    return {key: pareto_front({name: (row.get("success_rate"), row.get(key)) for name, row in rows.items()})
            for key, _label in COMPUTE_MEASURES}


def frontier_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The numbers behind the plot, one row per strategy, with its front membership per measure."""
    fronts = fronts_of(summary)
    rows = []
    for name, row in summary["strategies"].items():
        out = {"strategy": name, **{k: row.get(k) for k in VALUE_FIELDS}}
        for key, _label in COMPUTE_MEASURES:
            out["front_" + key.removeprefix("mean_")] = name in fronts[key]
        rows.append(out)
    return rows


def format_frontier_table(summary: dict[str, Any]) -> str:
    """The frontier as text: compute per task, and a * where a strategy is on that measure's front."""
    header = f"{'strategy':<10} {'success':>16} {'tokens':>10} {'calls':>7} {'s/task':>8} {'FLOPs':>9}"
    lines = ["compute frontier (* = on the Pareto front of that measure)", header, "-" * len(header)]
    for row in frontier_rows(summary):
        rate = "-" if row["success_rate"] is None else \
            f"{100 * row['success_rate']:5.1f}% ± {100 * row['std_error']:4.1f}%"
        cells = [_cell(row["mean_tokens"], ".0f", row["front_tokens"], 10),
                 _cell(row["mean_calls"], ".1f", row["front_calls"], 7),
                 _cell(row["mean_seconds"], ".1f", row["front_seconds"], 8),
                 _cell(row["mean_flops"], ".2g", row["front_flops"], 9)]
        lines.append(f"{row['strategy']:<10} {rate:>16} {' '.join(cells)}")
    lines.append("FLOPs: estimated, 2 x parameters x tokens computed (cached prompt tokens not counted); "
                 "- for a model outside the catalogue")
    return "\n".join(lines)


def _cell(value: float | None, spec: str, on_front: bool, width: int) -> str:
    text = "-" if value is None else format(value, spec) + ("*" if on_front else " ")
    return f"{text:>{width}}"


def write_frontier_csv(path: Path, summary: dict[str, Any]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(frontier_rows(summary))


@dataclass(frozen=True)
class TokenRatio:
    """One strategy's mean tokens per task divided by a baseline's, with the success each reached."""

    strategy: str
    baseline: str
    ratio: float | None  # None when the baseline spent no tokens
    success_rate: float
    baseline_success_rate: float

    def meets(self, max_ratio: float) -> bool:
        """At least the baseline's success rate for at most `max_ratio` of its tokens."""
        return self.ratio is not None and self.ratio <= max_ratio and self.success_rate >= self.baseline_success_rate


def token_ratio(summary: dict[str, Any], strategy: str, baseline: str) -> TokenRatio | None:
    """`strategy`'s mean tokens per task over `baseline`'s, at their success rates; None when either was
    not run or has no success rate or tokens (every task an error)."""
    rows = summary["strategies"]
    if strategy not in rows or baseline not in rows:
        return None
    mine, theirs = rows[strategy], rows[baseline]
    if any(row.get(key) is None for row in (mine, theirs) for key in ("success_rate", "mean_tokens")):
        return None
    ratio = mine["mean_tokens"] / theirs["mean_tokens"] if theirs["mean_tokens"] > 0 else None
    return TokenRatio(strategy, baseline, ratio, mine["success_rate"], theirs["success_rate"])


# ------------------------------------------------------------------------------------------ SVG


def figure_size(measures: Sequence[tuple[str, str]] = COMPUTE_MEASURES) -> tuple[int, int]:
    return PANEL_WIDTH * len(measures), PANEL_HEIGHT + TITLE_HEIGHT


def frontier_svg(summary: dict[str, Any], measures: Sequence[tuple[str, str]] = COMPUTE_MEASURES,
                 colors: dict[str, str] | None = None, title: str | None = None) -> str:
    """The figure, a panel per compute measure, as a standalone SVG document. Each key of
    summary["strategies"] is one labelled series (a strategy; bench/snell.py's model and strategy)."""
    strategies = list(summary["strategies"])
    colors = colors or {name: COLORS[i % len(COLORS)] for i, name in enumerate(strategies)}
    fronts = fronts_of(summary)
    width, height = figure_size(measures)
    tasks = max((row.get("tasks", 0) for row in summary["strategies"].values()), default=0)
    title = title or f"Success against compute: {summary.get('suite', '?')} suite, {tasks} task(s), " \
                     f"{len(strategies)} strategies (dashed: Pareto front)"
    unscored = [name for name, row in summary["strategies"].items() if row.get("success_rate") is None]
    if unscored:
        title += f"; not plotted, no scored task: {', '.join(unscored)}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="21" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for index, (key, label) in enumerate(measures):
        parts.append(_panel(summary, key, label, fronts.get(key, []), colors,
                            x0=index * PANEL_WIDTH, y0=TITLE_HEIGHT))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(summary: dict[str, Any], key: str, label: str, front: list[str], colors: dict[str, str],
           x0: float, y0: float) -> str:
    left, right = x0 + MARGIN_LEFT, x0 + PANEL_WIDTH - MARGIN_RIGHT
    top, bottom = y0 + MARGIN_TOP, y0 + PANEL_HEIGHT - MARGIN_BOTTOM
    points = {name: (row["success_rate"], row[key]) for name, row in summary["strategies"].items()
              if row.get("success_rate") is not None and row.get(key) is not None}
    log_scale = key in LOG_MEASURES
    if log_scale:
        points = {name: point for name, point in points.items() if point[1] > 0}
        x_ticks = log_ticks([c for _s, c in points.values()])
        x_min, x_max = math.log10(x_ticks[0]), math.log10(x_ticks[-1])
    else:
        x_ticks = nice_ticks(max((c for _s, c in points.values()), default=0.0))
        x_min, x_max = 0.0, x_ticks[-1]

    def px(compute: float) -> float:
        position = math.log10(compute) if log_scale else compute
        return left + (right - left) * (position - x_min) / (x_max - x_min)

    def py(success: float) -> float:
        return bottom - (bottom - top) * success

    out = [f'<g class="panel" data-measure="{key}">',
           f'<text x="{(left + right) / 2}" y="{y0 + 18}" text-anchor="middle" font-size="12" '
           f'font-weight="bold">success vs {escape(label.removeprefix("mean "))}</text>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = py(tick)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">{tick * 100:.0f}%</text>')
    for tick in x_ticks:
        x = px(tick)
        out.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#444"/>')
        text = f"1e{round(math.log10(tick))}" if log_scale else _tick_text(tick)
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{text}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#444"/>')
    axis = f"{label} (log scale)" if log_scale else label
    out.append(f'<text x="{(left + right) / 2}" y="{bottom + 34}" text-anchor="middle">{escape(axis)}</text>')
    if not points:
        why = "not known for these models" if log_scale else "no figures"
        out.append(f'<text class="empty" x="{(left + right) / 2}" y="{(top + bottom) / 2}" text-anchor="middle" '
                   f'fill="#888">{escape(why)}</text>')
    out.append(f'<text transform="translate({x0 + 14},{(top + bottom) / 2}) rotate(-90)" '
               'text-anchor="middle">success rate</text>')
    if front:
        line = " ".join(f"{px(points[n][1]):.1f},{py(points[n][0]):.1f}" for n in front)
        out.append(f'<polyline class="front" data-strategies={quoteattr(",".join(front))} points="{line}" '
                   'fill="none" stroke="#333" stroke-width="1.5" stroke-dasharray="5,3"/>')
    placed: list[tuple[float, float, float]] = []  # labels so far: left and right end, baseline
    for name, row in summary["strategies"].items():
        if name not in points:
            continue
        success, compute = points[name]
        x, y = px(compute), py(success)
        err = row.get("std_error") or 0.0
        y_low, y_high = py(max(0.0, success - err)), py(min(1.0, success + err))
        on_front = name in front
        # Labels of strategies at the same spot would overprint: shift each below the ones placed near it.
        # Right of the point, or left of it where it would cross the panel's right edge.
        width = LABEL_CHAR_WIDTH * len(name)
        anchor_end = x + 8 + width > right + MARGIN_RIGHT
        label_x, label_y = (x - 8 if anchor_end else x + 8), y - 6
        start = label_x - width if anchor_end else label_x
        while any(start < end_ and start_ < start + width and abs(label_y - y_) < 12 for start_, end_, y_ in placed):
            label_y += 12
        placed.append((start, start + width, label_y))
        color = colors[name]
        # A label moved down from its point gets a thin line to it: near other points, it reads as theirs.
        leader = (f'<line class="leader" x1="{x:.1f}" y1="{y:.1f}" x2="{label_x:.1f}" y2="{label_y - 4:.1f}" '
                  f'stroke="{color}" stroke-width="0.8" opacity="0.7"/>') if label_y > y - 6 else ""
        out.append(
            f'<g class="point" data-strategy={quoteattr(name)} data-front="{str(on_front).lower()}">{leader}'
            f'<line x1="{x:.1f}" y1="{y_low:.1f}" x2="{x:.1f}" y2="{y_high:.1f}" stroke="{color}"/>'
            f'<line x1="{x - 3:.1f}" y1="{y_low:.1f}" x2="{x + 3:.1f}" y2="{y_low:.1f}" stroke="{color}"/>'
            f'<line x1="{x - 3:.1f}" y1="{y_high:.1f}" x2="{x + 3:.1f}" y2="{y_high:.1f}" stroke="{color}"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{5 if on_front else 4}" fill="{color}" '
            f'stroke="{"#000" if on_front else "white"}" stroke-width="1.2"/>'
            f'<text x="{label_x:.1f}" y="{label_y:.1f}" fill="{color}" '
            f'text-anchor="{"end" if anchor_end else "start"}" '
            f'stroke="white" stroke-width="3" paint-order="stroke">{escape(name)}</text></g>')
    out.append("</g>")
    return "\n".join(out)


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Axis ticks from 0 in steps of 1, 2 or 5 x 10^n, the last at or above `maximum`: the finest
    such step that needs at most count + 1 intervals."""
    if maximum <= 0:
        return [0.0, 1.0]
    magnitude = 10 ** math.floor(math.log10(maximum / count))
    step = next(m * magnitude for m in (1, 2, 5, 10) if math.ceil(maximum / (m * magnitude) - 1e-9) <= count + 1)
    return [round(i * step, 10) for i in range(math.ceil(maximum / step - 1e-9) + 1)]


def log_ticks(values: Sequence[float]) -> list[float]:
    """Powers of ten from the one at or below the smallest value to the one at or above the largest
    (at least one decade apart)."""
    if not values:
        return [1.0, 10.0]
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    return [10.0 ** n for n in range(low, max(high, low + 1) + 1)]


def _tick_text(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


# ------------------------------------------------------------------------------------------ files


async def render_png(svg: str, path: Path, browser: BrowserConfig | None = None,
                     size: tuple[int, int] | None = None) -> None:
    """Render the SVG (of `size`, the frontier's by default) to a PNG (at 2x for sharp text) in headless Chromium."""
    width, height = size or figure_size()
    config = BrowserConfig(chromium=browser.chromium if browser else None,
                           viewport_width=width, viewport_height=height)
    async with BrowserSession(config) as session:
        await session.new_context(device_scale_factor=2)
        assert session.page is not None
        await session.page.set_content(f'<html><body style="margin:0">{svg}</body></html>')
        await session.page.locator("svg").screenshot(path=str(path))


async def write_frontier(out: Path, summary: dict[str, Any], browser: BrowserConfig | None = None,
                         run_dirs: Sequence[Path] | None = None) -> FrontierFiles:
    """Write frontier.csv, frontier.svg and frontier.png into `out`. A PNG that cannot be rendered
    (no Chromium) leaves the note why; the CSV and SVG are always written.

    Each strategy's mean estimated FLOPs and cached tokens per task are added to `summary` first, read
    from the traces of `run_dirs` (by default the eval run at `out`, or the ones under it)."""
    run_dirs = eval_run_dirs(out) if run_dirs is None else run_dirs
    if run_dirs:
        add_flops(summary, run_dirs)
    csv_path, svg_path, png_path = out / "frontier.csv", out / "frontier.svg", out / "frontier.png"
    write_frontier_csv(csv_path, summary)
    svg = frontier_svg(summary)
    svg_path.write_text(svg, encoding="utf-8")
    png_path.unlink(missing_ok=True)  # never leave an earlier run's plot next to this run's numbers
    note = None
    try:
        await render_png(svg, png_path, browser)
    except BrowserNotFound as exc:
        note = f"frontier.png not written: {exc}"
    return FrontierFiles(csv=csv_path, svg=svg_path, png=None if note else png_path, note=note,
                         fronts=fronts_of(summary))
