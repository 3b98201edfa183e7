"""Whether imagination changed the choice, per strategy, read back from an eval's step records.

Per real step (a steps.jsonl record whose action ran):
- overruled: the action that ran is not the step's greedy candidate (the first proposal, the action a
  reactive step would have run: agent/proposer.py), because a verdict beat it by the overrule margin
  or the risk gate held it back (agent/risk.py);
- right or wrong: whether an overruling was right cannot be known at the step. It is counted after the
  run, by the task's outcome: an overruled step of a task that succeeded is "right", one of a task
  that failed is "wrong", one of a task that ended in an error is neither. This is attribution by
  outcome, not a counterfactual: a needless overruling in a task that still succeeded counts as
  right, and a good one in a task that failed later counts as wrong. Even in a one-step task (most
  easy MiniWoB++ ones) it says whether the action that ran solved the task, not whether the greedy
  one would have failed. It never calls a change right in a task that failed.
- by fact: overruled because the greedy candidate was known from the page to fail or to change nothing
  (world_model/known_outcomes.py), not because a verdict beat it.
Records written before steps carried `greedy`/`overruled` are counted as `unrecorded`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.evaluation.summary import FAILURE, SUCCESS, json_lines, read_records


@dataclass
class OverruleCounts:
    steps: int = 0  # real steps (an action ran)
    overruled: int = 0  # of those, the action was not the greedy candidate
    right: int = 0  # overruled, in a task that succeeded
    wrong: int = 0  # overruled, in a task that failed
    by_fact: int = 0  # overruled, the greedy candidate known to fail or change nothing
    unrecorded: int = 0  # steps from records without the greedy/overruled fields

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def count_overrules(run_dirs: Iterable[Path], strategies: Sequence[str]) -> dict[str, OverruleCounts]:
    """Per strategy, the counts over the tasks of every eval directory in `run_dirs` (results.jsonl's
    status per task, OUT/<strategy>/<task-id>/steps.jsonl per step)."""
    counts = {strategy: OverruleCounts() for strategy in strategies}
    for run_dir in run_dirs:
        for record in read_records(run_dir / "results.jsonl"):
            if record["strategy"] in counts:
                steps = _real_steps(run_dir / record["strategy"] / record["task_id"] / "steps.jsonl")
                _add(counts[record["strategy"]], steps, record["status"])
    return counts


def _add(counts: OverruleCounts, steps: list[dict[str, Any]], status: str) -> None:
    for step in steps:
        counts.steps += 1
        if "overruled" not in step:
            counts.unrecorded += 1
        elif step["overruled"]:
            counts.overruled += 1
            counts.right += status == SUCCESS
            counts.wrong += status == FAILURE
            counts.by_fact += bool(((step.get("scores") or {}).get(step.get("greedy")) or {}).get("known"))


def _real_steps(path: Path) -> list[dict[str, Any]]:
    return [record for record in json_lines(path) if record.get("choice") is not None]


def format_overrules(counts: dict[str, OverruleCounts]) -> str:
    """A table: per strategy, its steps, how many ran another action than the greedy one, and how many
    of those were in tasks that succeeded (right) or failed (wrong)."""
    header = f"{'strategy':<10} {'steps':>6} {'overruled':>9} {'right':>6} {'wrong':>6} {'by fact':>8}"
    lines = [header, "-" * len(header)]
    for strategy, row in counts.items():
        lines.append(f"{strategy:<10} {row.steps:>6} {row.overruled:>9} {row.right:>6} {row.wrong:>6} {row.by_fact:>8}")
    lines.append("overruled: the step ran another action than the greedy (first) proposal; right / wrong: "
                 "in a task that succeeded / failed; by fact: the greedy one was known to fail or change nothing")
    unrecorded = {s: row.unrecorded for s, row in counts.items() if row.unrecorded}
    if unrecorded:
        lines.append("steps recorded without greedy/overruled (older runs), not counted as overruled: "
                     + ", ".join(f"{s} {n}" for s, n in unrecorded.items()))
    return "\n".join(lines)


@dataclass
class MarginRow:
    margin: float
    steps: int = 0  # real steps whose best other candidate out-scored the greedy one by at least the margin
    right: int = 0  # of those, in a task the strategy solved and the same eval's reactive run failed
    wrong: int = 0  # in a task the strategy failed and reactive solved

    @property
    def same(self) -> int:
        """In a task with the same outcome both ways (or no reactive row)."""
        return self.steps - self.right - self.wrong

    @property
    def net(self) -> int:
        return self.right - self.wrong


def margin_rows(run_dir: Path, strategy: str, margins: Sequence[float]) -> list[MarginRow]:
    """How overruling the greedy proposal fared at each margin, from one eval directory that ran
    `strategy` and reactive on the same tasks. A step counts at margin m when its best other candidate
    out-scored the greedy one by m or more. Only margins at or above the run's own are meaningful: a
    step with a smaller gap was not overruled in the run, so its task's outcome says nothing about
    overruling it. Per step, not a replay: after the first overrule the path is the run's own."""
    outcome = {(r["strategy"], r["task_id"]): r["status"] for r in read_records(run_dir / "results.jsonl")}
    gaps: list[tuple[float, bool, bool]] = []  # (gap, the task won against reactive, the task lost to it)
    for (name, task_id), status in outcome.items():
        if name != strategy:
            continue
        reactive = outcome.get(("reactive", task_id))
        won, lost = status == SUCCESS and reactive == FAILURE, status == FAILURE and reactive == SUCCESS
        for step in _real_steps(run_dir / strategy / task_id / "steps.jsonl"):
            scores = {action: s["value"] for action, s in (step.get("scores") or {}).items()}
            others = [value for action, value in scores.items() if action != step.get("greedy")]
            if step.get("greedy") in scores and others:
                gaps.append((max(others) - scores[step["greedy"]], won, lost))
    rows = []
    for margin in margins:
        reached = [(won, lost) for gap, won, lost in gaps if gap >= margin - 1e-9]
        rows.append(MarginRow(margin, steps=len(reached), right=sum(w for w, _ in reached),
                              wrong=sum(lo for _, lo in reached)))
    return rows


def best_margin(rows: Sequence[MarginRow]) -> MarginRow:
    """The row with the most right overrules net of wrong ones; of equals, the lowest margin, so that
    imagination still acts wherever it did no net harm on the tuning split."""
    return max(rows, key=lambda row: (row.net, -row.margin))
