"""`forethought calibrate RUNS...`: fit adaptive's thresholds from recorded runs and write them to a
settings file (`forethought run --strategy adaptive --adaptive-settings FILE` reads it).

What is learned from: every recorded step (steps.jsonl, or the `step` events of trace.jsonl) where
the verifier chose among several candidates says whether extra compute paid off there. It paid off
when the action that ran is not the policy's own first candidate and, where the run is an eval run
(its results.jsonl says how the task ended), the task succeeded, and failed in the same eval's
reactive run when there is one. A changed choice in a task that failed anyway, or that one call per
step solved too, bought nothing. Each threshold is then the cut on its signal that best separates
the steps where compute paid off from those where it did not (the largest balanced accuracy,
TPR + TNR - 1; ties go to the cut nearest the current value):

  surprise_hard            the previous real step's surprise (1 - F1 of its prediction; 1.0 when it
                           failed): at or above -> paid off
  agreement_easy           adaptive runs' proposal agreement on a page acted on before, and
  agreement_easy_new_page  on a new page: at or above -> did not pay off
  spread_clear             adaptive runs that escalated from rerank to dreamer: rerank's spread at or
                           above -> imagining did not change rerank's choice
  rerank_first             adaptive runs that reranked steps whose proposals disagreed: on when rerank
                           settled more than half of them (then its K verifier calls save dreamer's 2K
                           more often than not)

A threshold needs MIN_EACH examples of each outcome, or MIN_ONE_SIDED examples all of one outcome:
when compute never paid off on that many steps, the cut is set so that none of them would have
spent it (and when it always did, so that all would). Otherwise it keeps its current value;
`fitted_from` in the written file says which were fitted and from how much.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import AdaptiveSettings
from agent.evaluation.summary import read_records

MIN_EACH = 2  # examples of each outcome a threshold needs before it is fitted
MIN_ONE_SIDED = 5  # or examples all of one outcome
STEP_FILES = ("trace.jsonl", "steps.jsonl")  # per task directory, the first one present is read


@dataclass
class Examples:
    """(signal value, compute paid off) pairs per threshold."""

    surprise: list[tuple[float, bool]] = field(default_factory=list)
    agreement: list[tuple[float, bool]] = field(default_factory=list)
    agreement_new_page: list[tuple[float, bool]] = field(default_factory=list)
    spread: list[tuple[float, bool]] = field(default_factory=list)
    rerank_settled: list[bool] = field(default_factory=list)  # per disagreement reranked first: settled there
    steps: int = 0
    tasks: int = 0


def step_files(paths: Iterable[str | Path]) -> list[Path]:
    """The recorded step files under `paths` (run dirs, task dirs or files), one per task directory."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
            continue
        if not path.is_dir():
            raise ValueError(f"no such run directory or file: {path}")
        task_dirs = sorted({f.parent for name in STEP_FILES for f in path.rglob(name)})
        for task_dir in task_dirs:
            files.append(next(task_dir / n for n in STEP_FILES if (task_dir / n).is_file()))
    if not files:
        raise ValueError(f"no recorded steps ({' or '.join(STEP_FILES)}) under {', '.join(map(str, paths))}")
    return files


def read_steps(path: Path) -> list[dict[str, Any]]:
    """The step records of one task, in order."""
    steps = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: not JSON ({exc}); is this a recorded run?") from None
        if path.name == "trace.jsonl":
            if event.get("type") == "step":
                steps.append(event)
        else:
            steps.append(event)
    return steps


def task_outcomes(files: Sequence[Path]) -> dict[Path, tuple[bool, bool | None]]:
    """Per task directory of an eval run (RUN/STRATEGY/TASK): (it succeeded, the same eval's reactive run
    of the task succeeded, or None without one). Tasks outside an eval run are left out."""
    ended: dict[Path, dict[tuple[str, str], bool]] = {}  # per run directory
    outcomes: dict[Path, tuple[bool, bool | None]] = {}
    for task_dir in {file.parent for file in files}:
        run_dir = task_dir.parent.parent
        if run_dir not in ended:
            ended[run_dir] = {(r["strategy"], r["task_id"]): bool(r["success"])
                              for r in read_records(run_dir / "results.jsonl")}
        success = ended[run_dir].get((task_dir.parent.name, task_dir.name))
        if success is not None:
            outcomes[task_dir] = (success, ended[run_dir].get(("reactive", task_dir.name)))
    return outcomes


def collect(files: Sequence[Path]) -> Examples:
    examples = Examples()
    outcomes = task_outcomes(files)
    for file in files:
        examples.tasks += 1
        succeeded, reactive_succeeded = outcomes.get(file.parent, (True, None))
        compute_could_pay = succeeded and not reactive_succeeded
        previous_surprise: float | None = None
        for record in read_steps(file):
            if not record.get("choice"):
                continue  # a failed proposal or a refused step ran nothing
            examples.steps += 1
            candidates, scores = record.get("candidates") or [], record.get("scores") or {}
            failed_before = bool((record.get("observation") or {}).get("last_action_error"))
            surprise = 1.0 if failed_before else previous_surprise
            decisions = record.get("adaptive") or []
            if len(candidates) > 1 and scores:  # the verifier chose among several
                paid_off = compute_could_pay and record["choice"] != candidates[0]
                if surprise is not None:
                    examples.surprise.append((surprise, paid_off))
                signals = decisions[0]["signals"] if decisions else {}
                if signals.get("agreement") is not None:
                    on = examples.agreement_new_page if signals.get("new_page") else examples.agreement
                    on.append((signals["agreement"], paid_off))
            if decisions and decisions[0].get("mode") == "rerank" and "proposals disagree" in decisions[0]["why"]:
                examples.rerank_settled.append(len(decisions) == 1)
            for decision in decisions:  # an escalation records the rerank scores it was made on
                if decision.get("mode") == "dreamer" and decision.get("scores"):
                    rerank_choice = max(decision["scores"], key=decision["scores"].get)
                    changed = record["choice"] != rerank_choice
                    examples.spread.append((decision["signals"]["spread"], compute_could_pay and changed))
            recorded = record.get("surprise")
            previous_surprise = recorded["score"] if recorded else None
    return examples


def fit_threshold(examples: Sequence[tuple[float, bool]], current: float, paid_off_above: bool) -> tuple[float, str]:
    """(threshold, how it was found). `paid_off_above`: compute pays off at or above the cut (else below)."""
    positives = sum(1 for _, paid in examples if paid)
    negatives = len(examples) - positives
    one_sided = len(examples) >= MIN_ONE_SIDED and not (positives and negatives)
    if not one_sided and (positives < MIN_EACH or negatives < MIN_EACH):
        return current, f"kept {current:g} ({positives} steps where compute paid off, {negatives} where not; " \
                        f"{MIN_EACH} of each or {MIN_ONE_SIDED} of one needed)"

    def accuracy(cut: float) -> float:  # an outcome with no examples counts as fully separated
        hits = sum(1 for x, paid in examples if paid and (x >= cut) == paid_off_above)
        passes = sum(1 for x, paid in examples if not paid and (x >= cut) != paid_off_above)
        return (hits / positives if positives else 1) + (passes / negatives if negatives else 1) - 1

    values = sorted({x for x, _ in examples})
    cuts = [*values, round(values[-1] + 0.01, 4)]  # the last one is above every example
    best = max(cuts, key=lambda cut: (round(accuracy(cut), 9), -abs(cut - current)))
    separation = accuracy(best)
    if separation <= 0:
        return current, f"kept {current:g} (no cut separates the {positives} steps where compute paid off " \
                        f"from the {negatives} where not)"
    how = f"balanced accuracy {separation:+.2f}" if not one_sided else \
        f"compute {'paid off on all' if positives else 'paid off on none'} of them"
    return round(best, 4), f"fitted {best:g} from {len(examples)} steps ({how})"


def fit_rerank_first(settled: Sequence[bool], current: bool) -> tuple[bool, str]:
    """Whether reranking disagreements first pays: it settled more than half of them."""
    if len(settled) < 2 * MIN_EACH:
        return current, f"kept {str(current).lower()} ({len(settled)} disagreements reranked first; " \
                        f"{2 * MIN_EACH} needed)"
    share = sum(settled) / len(settled)
    return share > 0.5, f"fitted {str(share > 0.5).lower()}: rerank settled {sum(settled)} of {len(settled)} " \
                        "disagreements"


def calibrate(paths: Sequence[str | Path], base: AdaptiveSettings | None = None) -> tuple[AdaptiveSettings, list[str]]:
    """Settings with thresholds fitted from the recorded runs under `paths`, and one line per threshold."""
    base = base or AdaptiveSettings()
    examples = collect(step_files(paths))
    surprise_hard, surprise_how = fit_threshold(examples.surprise, base.surprise_hard, paid_off_above=True)
    agreement_easy, agreement_how = fit_threshold(examples.agreement, base.agreement_easy, paid_off_above=False)
    new_page, new_page_how = fit_threshold(examples.agreement_new_page, base.agreement_easy_new_page,
                                           paid_off_above=False)
    spread_clear, spread_how = fit_threshold(examples.spread, base.spread_clear, paid_off_above=False)
    rerank_first, rerank_how = fit_rerank_first(examples.rerank_settled, base.rerank_first)
    lines = [f"surprise_hard: {surprise_how}", f"agreement_easy: {agreement_how}",
             f"agreement_easy_new_page: {new_page_how}", f"spread_clear: {spread_how}", f"rerank_first: {rerank_how}"]
    summary = f"{examples.steps} steps of {examples.tasks} tasks in {', '.join(map(str, paths))}; " + "; ".join(lines)
    fitted = base.model_copy(update={"surprise_hard": surprise_hard, "agreement_easy": agreement_easy,
                                     "agreement_easy_new_page": new_page, "spread_clear": spread_clear,
                                     "rerank_first": rerank_first, "fitted_from": summary})
    return fitted, lines
