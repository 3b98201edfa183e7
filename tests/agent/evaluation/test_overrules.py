"""Counting, per strategy, the steps where imagination overruled the greedy proposal, and whether the
task they were in succeeded, from an eval directory's results.jsonl and steps.jsonl files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.evaluation.overrules import OverruleCounts, best_margin, count_overrules, format_overrules, margin_rows


def write_task(out: Path, strategy: str, task_id: str, status: str, steps: list[dict[str, Any]]) -> None:
    task_dir = out / strategy / task_id
    task_dir.mkdir(parents=True)
    (task_dir / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
    with open(out / "results.jsonl", "a", encoding="utf-8") as results:
        results.write(json.dumps({"strategy": strategy, "task_id": task_id, "status": status}) + "\n")


def step(choice: str | None, greedy: str = "click('e1')", **extra: Any) -> dict[str, Any]:
    return {"choice": choice, "greedy": greedy, "overruled": choice is not None and choice != greedy, **extra}


def test_overruled_steps_are_right_in_tasks_that_succeeded_and_wrong_in_tasks_that_failed(tmp_path: Path) -> None:
    miniwob, local = tmp_path / "miniwob", tmp_path / "local"
    for suite in (miniwob, local):
        suite.mkdir()
    write_task(miniwob, "dreamer", "a", "success", [step("click('e2')"), step("click('e1')")])
    write_task(miniwob, "dreamer", "b", "failure", [step(None), step("click('e3')")])  # a failed proposal first
    write_task(local, "dreamer", "c", "error", [step("click('e2')")])  # an error: neither right nor wrong
    write_task(local, "dreamer", "d", "failure", [step("click('e1')")])
    known = {"click('e1')": {"value": 0.0, "known": "no change"}, "click('e5')": {"value": 0.1}}
    write_task(local, "dreamer", "f", "success", [step("click('e5')", scores=known)])  # the greedy one did nothing
    write_task(local, "reactive", "a", "success", [step("click('e1')")])
    old = {"choice": "click('e1')", "candidates": ["click('e1')"]}  # written before the fields existed
    write_task(local, "adaptive", "a", "failure", [old, step("click('e4')")])
    with open(local / "results.jsonl", "a", encoding="utf-8") as results:
        results.write('{"strategy": "dreamer", "task_id": "e", "sta')  # a torn last line

    counts = count_overrules([miniwob, local], ["reactive", "dreamer", "adaptive"])

    assert counts["dreamer"] == OverruleCounts(steps=6, overruled=4, right=2, wrong=1, by_fact=1)
    assert counts["reactive"] == OverruleCounts(steps=1)
    assert counts["adaptive"] == OverruleCounts(steps=2, overruled=1, wrong=1, unrecorded=1)
    table = format_overrules(counts).splitlines()
    assert table[0].split() == ["strategy", "steps", "overruled", "right", "wrong", "by", "fact"]
    assert table[3].split() == ["dreamer", "6", "4", "2", "1", "1"]
    assert table[-1] == "steps recorded without greedy/overruled (older runs), not counted as overruled: adaptive 1"


def test_a_strategy_without_runs_counts_nothing(tmp_path: Path) -> None:
    assert count_overrules([tmp_path], ["dreamer"]) == {"dreamer": OverruleCounts()}


def scored(greedy: float, other: float) -> dict[str, Any]:
    return step("click('e1')", scores={"click('e1')": {"value": greedy}, "click('e2')": {"value": other}})


def test_each_margin_counts_the_gaps_reaching_it_against_reactives_outcome(tmp_path: Path) -> None:
    write_task(tmp_path, "dreamer", "solved", "success", [scored(0.1, 0.5)])  # reactive failed: right
    write_task(tmp_path, "reactive", "solved", "failure", [step("click('e1')")])
    write_task(tmp_path, "dreamer", "lost", "failure", [scored(0.0, 0.9), scored(0.8, 0.2)])  # reactive won: wrong
    write_task(tmp_path, "reactive", "lost", "success", [step("click('e1')")])
    write_task(tmp_path, "dreamer", "both", "success", [scored(0.5, 0.8)])  # no reactive row: same
    write_task(tmp_path, "dreamer", "unscored", "failure", [step("click('e1')")])  # reactive-like step: no gap

    rows = margin_rows(tmp_path, "dreamer", [0.2, 0.4, 0.5, 1.0])

    assert [(r.margin, r.steps, r.right, r.wrong, r.same) for r in rows] == [
        (0.2, 3, 1, 1, 1), (0.4, 2, 1, 1, 0), (0.5, 1, 0, 1, 0), (1.0, 0, 0, 0, 0)]
    assert best_margin(rows).margin == 0.2  # net 0 at 0.2 and 0.4 and 1.0: the lowest of them
    assert best_margin(rows[2:]).margin == 1.0  # overruling at 0.5 only lost


def test_the_fit_margin_script_prints_the_table_from_the_runs_own_margin(tmp_path: Path) -> None:
    write_task(tmp_path, "dreamer", "lost", "failure", [scored(0.0, 0.9)])
    write_task(tmp_path, "reactive", "lost", "success", [step("click('e1')")])
    (tmp_path / "run.json").write_text(json.dumps({"planner": {"overrule_margin": 0.5}}), encoding="utf-8")
    script = Path(__file__).resolve().parents[3] / "scripts" / "fit_margin.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[2].split() == ["0.50", "1", "0", "1", "0", "-1"]  # nothing below the run's own margin
    assert lines[-1] == "best margin: 0.95 (0 overrules, net +0)"
    missing = subprocess.run([sys.executable, str(script), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no results.jsonl" in missing.stderr
