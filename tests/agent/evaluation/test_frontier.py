"""The compute frontier of a multi-strategy eval: the Pareto front, the SVG plot, and the files an eval
with two strategies writes (scripted model, MiniWoB++ pages in real headless Chromium)."""
from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from agent.config import PlannerConfig
from agent.evaluation.frontier import (
    format_frontier_table,
    frontier_rows,
    frontier_svg,
    nice_ticks,
    pareto_front,
    token_ratio,
)
from agent.evaluation.runner import EvalOptions, run_eval
from agent.evaluation.suites import load_suite
from agent.llm.settings import load_settings

SVG = "{http://www.w3.org/2000/svg}"


def child(element: ET.Element, path: str) -> ET.Element:
    """The first element under `element` at `path`, which must be there."""
    found = element.find(path)
    assert found is not None, f"no {path} in {element.tag}"
    return found


def attribute(element: ET.Element, name: str) -> str:
    """`element`'s attribute `name`, which it must have."""
    value = element.get(name)
    assert value is not None, f"{element.tag} has no {name}"
    return value


def strategy_row(success: float | None, tokens: float | None, calls: float | None, seconds: float | None,
                 flops: float | None = None, std_error: float = 0.1) -> dict:
    return {"tasks": 10, "success_rate": success, "std_error": None if success is None else std_error,
            "mean_tokens": tokens, "mean_calls": calls, "mean_seconds": seconds, "mean_flops": flops}


def hand_made_summary() -> dict:
    return {"suite": "local", "agent": "planner", "skipped_without_oracle": [], "strategies": {
        "reactive": strategy_row(0.4, 1000, 5, 2.0, 1e11),
        "rerank": strategy_row(0.6, 3000, 15, 4.0, 4e11),
        "dreamer": strategy_row(0.6, 5000, 30, 3.0, 3e12),   # rerank's success at more tokens and calls
        "beam": strategy_row(0.8, 9000, 60, 9.0, 2e12),  # fewer FLOPs than dreamer: more of its prompts cached
        "revise": strategy_row(0.5, 9500, 70, 12.0, 5e12),   # dominated by rerank and beam everywhere
        "adaptive": strategy_row(None, None, None, None),  # every task an error: not plotted
    }}


def test_pareto_front_excludes_dominated_points_keeps_ties_and_orders_by_compute():
    assert pareto_front({"a": (0.5, 10), "b": (0.7, 20), "c": (0.6, 30), "d": (0.9, 40)}) == ["a", "b", "d"]
    # Same success at more compute, or less success at the same compute, is dominated.
    assert pareto_front({"a": (0.5, 10), "b": (0.5, 12), "c": (0.4, 10)}) == ["a"]
    # Exact ties dominate neither way: both stay.
    assert pareto_front({"x": (0.5, 10), "y": (0.5, 10), "z": (0.2, 20)}) == ["x", "y"]
    # Unknown numbers are left out, and a lone point is its own front.
    assert pareto_front({"a": (None, 5), "b": (0.3, None), "c": (0.1, 50)}) == ["c"]
    assert pareto_front({}) == []


def test_frontier_rows_mark_each_measures_front():
    rows = {r["strategy"]: r for r in frontier_rows(hand_made_summary())}
    on = {measure: sorted(name for name, r in rows.items() if r[f"front_{measure}"])
          for measure in ("tokens", "calls", "seconds", "flops")}
    assert on["tokens"] == ["beam", "reactive", "rerank"]
    assert on["calls"] == ["beam", "reactive", "rerank"]
    assert on["seconds"] == ["beam", "dreamer", "reactive"]  # dreamer is faster than rerank here
    assert on["flops"] == ["beam", "reactive", "rerank"]
    assert rows["adaptive"]["success_rate"] is None and not any(
        rows["adaptive"][f"front_{m}"] for m in ("tokens", "calls", "seconds", "flops"))
    table = format_frontier_table(hand_made_summary()).splitlines()
    dreamer = next(line for line in table if line.startswith("dreamer"))
    assert dreamer.split()[-4:] == ["5000", "30.0", "3.0*", "3e+12"]
    beam = next(line for line in table if line.startswith("beam"))
    assert beam.split()[-1] == "2e+12*"


def test_svg_is_valid_xml_with_a_labelled_point_per_strategy_and_the_front_line_in_each_panel():
    root = ET.fromstring(frontier_svg(hand_made_summary()))
    panels = root.findall(f"{SVG}g[@class='panel']")
    assert [p.get("data-measure") for p in panels] == ["mean_tokens", "mean_calls", "mean_seconds", "mean_flops"]
    for panel in panels:
        points = panel.findall(f"{SVG}g[@class='point']")
        labels = {p.get("data-strategy"): child(p, f"{SVG}text").text for p in points}
        assert labels == {name: name for name in ("reactive", "rerank", "dreamer", "beam", "revise")}
        (front,) = panel.findall(f"{SVG}polyline[@class='front']")
        front_names = attribute(front, "data-strategies").split(",")
        on_front = [attribute(p, "data-strategy") for p in points if p.get("data-front") == "true"]
        assert sorted(front_names) == sorted(on_front)
        assert len(attribute(front, "points").split()) == len(front_names)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"mean tokens per task", "mean LLM calls per task", "mean seconds per task", "10k",
            "estimated FLOPs per task (log scale)", "1e11", "1e12", "1e13"} <= set(texts)
    # The front through reactive, rerank, beam on the tokens panel rises left to right.
    tokens_front = attribute(child(panels[0], f"{SVG}polyline"), "points").split()
    xs, ys = zip(*((float(a), float(b)) for a, b in (p.split(",") for p in tokens_front)))
    assert list(xs) == sorted(xs) and list(ys) == sorted(ys, reverse=True)


def test_the_flops_panel_is_log_scaled_one_decade_per_tick():
    flops_panel = ET.fromstring(frontier_svg(hand_made_summary())).findall(f"{SVG}g[@class='panel']")[3]
    ticks = {t.text: float(attribute(t, "x")) for t in flops_panel.findall(f"{SVG}text") if (t.text or "")[:2] == "1e"}
    assert list(ticks) == ["1e11", "1e12", "1e13"]
    assert ticks["1e12"] - ticks["1e11"] == ticks["1e13"] - ticks["1e12"]
    x = {attribute(p, "data-strategy"): float(attribute(child(p, f"{SVG}circle"), "cx"))
         for p in flops_panel.findall(f"{SVG}g[@class='point']")}
    assert x["reactive"] == ticks["1e11"]  # 1e11 sits on its tick
    # 4e11 is log10(4) = 0.60 of the way from 1e11 to 1e12, not 4/10 of the linear way.
    assert abs((x["rerank"] - ticks["1e11"]) / (ticks["1e12"] - ticks["1e11"]) - 0.602) < 0.01


def test_nice_ticks_cover_the_largest_value():
    assert nice_ticks(9500) == [0, 2000, 4000, 6000, 8000, 10000]
    assert nice_ticks(3.0) == [0, 1, 2, 3]
    assert nice_ticks(0) == [0.0, 1.0]


def test_token_ratio_divides_mean_tokens_and_meets_the_goal_only_at_no_less_success():
    summary = hand_made_summary()
    summary["strategies"]["adaptive"] = strategy_row(0.6, 2000, 12, 2.5)
    ratio = token_ratio(summary, "adaptive", "dreamer")
    assert ratio is not None
    assert (ratio.ratio, ratio.success_rate, ratio.baseline_success_rate) == (0.4, 0.6, 0.6)
    assert ratio.meets(0.5) and not ratio.meets(0.3)
    # Cheaper but less successful: the goal is not met, however few the tokens.
    cheap = token_ratio(summary, "reactive", "dreamer")
    assert cheap is not None and cheap.ratio == 0.2 and not cheap.meets(0.5)
    dearer = token_ratio(summary, "beam", "dreamer")
    assert dearer is not None and dearer.ratio == 1.8


def test_token_ratio_is_none_without_both_strategies_scored():
    summary = hand_made_summary()
    assert token_ratio(summary, "adaptive", "dreamer") is None  # every adaptive task an error
    assert token_ratio(summary, "lookahead", "dreamer") is None  # not run
    summary["strategies"]["dreamer"] = strategy_row(0.0, 0, 0, 1.0)
    free = token_ratio(summary, "reactive", "dreamer")
    assert free is not None and free.ratio is None and not free.meets(0.5)  # nothing to divide by


def write_script(path: Path) -> Path:
    """Clicks the button and focuses the textbox; the verifier calls everything complete."""
    path.write_text(json.dumps({
        "policy": [
            {"when": "Click the button.", "answer": "click('e1')", "repeat": True},
            {"when": "Focus into the textbox.", "answer": "focus('e1')", "repeat": True},
        ],
        "verifier": [{"when": "Task:", "answer": '{"reason": "fine", "verdict": "complete"}', "repeat": True}],
    }))
    return path


async def test_an_eval_of_two_strategies_writes_the_frontier_csv_svg_and_png(tmp_path):
    script = write_script(tmp_path / "script.json")
    out = tmp_path / "run"
    options = EvalOptions(suite="miniwob", out=out, agent="planner", strategies=("reactive", "rerank"),
                          settings=load_settings(model=f"scripted:{script}"), planner=PlannerConfig(k=2, samples=1),
                          progress=None, screenshots=False)
    summary = await run_eval(options, load_suite("miniwob", ["click-test", "focus-text"]))

    reactive, rerank = summary["strategies"]["reactive"], summary["strategies"]["rerank"]
    assert reactive["success_rate"] == rerank["success_rate"] == 1.0
    assert reactive["mean_calls"] == 1.0  # one policy call for the one step of each task
    assert rerank["mean_calls"] > reactive["mean_calls"] and rerank["mean_tokens"] > reactive["mean_tokens"]
    # Same success at less compute: reactive alone is on the calls and tokens fronts.
    assert summary["frontier"]["fronts"]["mean_calls"] == ["reactive"]
    assert summary["frontier"]["fronts"]["mean_tokens"] == ["reactive"]
    assert json.loads((out / "summary.json").read_text()) == summary

    with open(out / "frontier.csv") as handle:
        rows = {r["strategy"]: r for r in csv.DictReader(handle)}
    assert (rows["reactive"]["mean_calls"], rows["reactive"]["front_calls"], rows["rerank"]["front_calls"]) == \
        ("1.0", "True", "False")
    root = ET.fromstring((out / "frontier.svg").read_text())
    assert {g.get("data-strategy") for g in root.iter(f"{SVG}g") if g.get("class") == "point"} == {"reactive", "rerank"}
    png = (out / "frontier.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (2 * 1360, 2 * 314)  # the whole figure, at twice the scale
    # A scripted model is not in the catalogue: its FLOPs are unknown, not zero, and that panel says so.
    assert rows["reactive"]["mean_flops"] == "" and summary["strategies"]["reactive"]["mean_flops"] is None
    (flops_panel,) = [g for g in root.iter(f"{SVG}g") if g.get("data-measure") == "mean_flops"]
    assert [t.text for t in flops_panel.iter(f"{SVG}text") if t.get("class") == "empty"] == \
        ["not known for these models"]


async def test_a_single_strategy_eval_writes_no_frontier(tmp_path):
    script = write_script(tmp_path / "script.json")
    options = EvalOptions(suite="miniwob", out=tmp_path / "run", agent="planner", strategies=("reactive",),
                          settings=load_settings(model=f"scripted:{script}"), progress=None, screenshots=False)
    summary = await run_eval(options, load_suite("miniwob", ["click-test"]))
    assert "frontier" not in summary and not (tmp_path / "run" / "frontier.svg").exists()
