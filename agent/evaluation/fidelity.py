"""`forethought wm-eval`: how right the world model was about the actions that really ran.

For every executed action with a recorded prediction, world_model/surprise.py compares the changes
predicted with the real change between the pages before and after: precision (claims that came
true), recall (real changes the prediction named) and F1, with their counts. Totals add the counts
over all steps (so a step with many claims weighs more), then take precision, recall and F1 of
the sums. An empty or unparsed prediction scores the worst.
With another model, the same actions are predicted again on the recorded pages and scored the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import reduce
from operator import add
from pathlib import Path
from typing import Any

from envs.rendering import render_text
from traces.schema import Trace, read_trace
from world_model.surprise import Surprise, Tally, measure_surprise
from world_model.world_model import LLMWorldModel, Prediction


@dataclass
class Scored:
    step: int
    action: str
    surprise: Surprise


@dataclass
class TraceScore:
    trace_dir: Path
    recorded: list[Scored] = field(default_factory=list)  # the predictions made during the run
    repredicted: list[Scored] = field(default_factory=list)  # by the model passed with --model


def total(scored: list[Scored]) -> Tally:
    return reduce(add, (Tally.of(s.surprise) for s in scored), Tally())


PREDICTION_FIELDS = {f.name for f in fields(Prediction)}


def _prediction(data: dict[str, Any]) -> Prediction:
    return Prediction(**{k: data[k] for k in PREDICTION_FIELDS if k in data})


def _history(trace: Trace, step: dict[str, Any]) -> list[str]:
    return [s["choice"] for s in trace.executed_steps() if s["step"] < step["step"]]


async def score_trace(path: str | Path, world_model: LLMWorldModel | None = None) -> TraceScore:
    """Score the recorded predictions of one trace, and re-predict each executed action with `world_model`."""
    trace = read_trace(path)
    result = TraceScore(trace.dir)
    tokens = trace.task.get("config", {}).get("observation_tokens")
    for step in trace.executed_steps():
        before, after = trace.observation(step["before"]), trace.observation(step["after"])
        action = step["choice"]
        imagined = (step.get("imagined") or {}).get(action)
        if imagined:
            surprise = measure_surprise(action, _prediction(imagined[0]["prediction"]), before, after)
            result.recorded.append(Scored(step["step"], action, surprise))
        if world_model is not None:
            # The model sees the page as the agent saw it: the before state, rendered the same way.
            [first, *_] = await world_model.imagine(trace.goal, before, action, 1, history=_history(trace, step),
                                                   page_text=render_text(before, tokens))
            surprise = measure_surprise(action, first.prediction, before, after)
            result.repredicted.append(Scored(step["step"], action, surprise))
    return result


def _ratio(value: float | None, part: int, whole: int) -> str:
    return f"{'-' if value is None else f'{value:.3f}'} ({part}/{whole})"


def tally_text(tally: Tally) -> str:
    """F1 0.667  precision 0.500 (1/2)  recall 1.000 (1/1); "-" where there was nothing to count."""
    return (f"F1 {tally.f1:.3f}  precision {_ratio(tally.precision, tally.true_claims, tally.claims)}"
            f"  recall {_ratio(tally.recall, tally.named_changes, tally.changes)}")


def format_scores(scores: list[TraceScore], model: str | None = None) -> str:
    """Per-trace (per step) and overall precision, recall and F1, as printed by wm-eval."""
    lines = []

    def block(label: str, scored: list[Scored], steps: bool) -> None:
        if not scored:
            lines.append(f"  {label}: no predictions to score")
            return
        unpredicted = sum(not s.surprise.predicted for s in scored)
        none_note = f", {unpredicted} without a prediction" if unpredicted else ""
        lines.append(f"  {label}: {tally_text(total(scored))}  over {len(scored)} actions{none_note}")
        for s in scored if steps else []:
            note = "  (no prediction)" if not s.surprise.predicted else ""
            lines.append(f"    step {s.step} {s.action}: {tally_text(Tally.of(s.surprise))}{note}")

    for score in scores:
        lines.append(str(score.trace_dir))
        block("recorded predictions", score.recorded, steps=True)
        if model:
            block(model, score.repredicted, steps=True)
    lines.append("overall")
    block("recorded predictions", [s for t in scores for s in t.recorded], steps=False)
    if model:
        block(model, [s for t in scores for s in t.repredicted], steps=False)
    return "\n".join(lines)


def _tally_data(tally: Tally, actions: int) -> dict[str, Any]:
    return {"actions": actions, "f1": round(tally.f1, 4), "precision": tally.precision, "recall": tally.recall,
            "claims": tally.claims, "true_claims": tally.true_claims, "changes": tally.changes,
            "named_changes": tally.named_changes}


def scores_data(scores: list[TraceScore], model: str | None = None) -> dict[str, Any]:
    """What `wm-eval --json` prints: per trace its steps (each step's Surprise) and total, and overall totals."""
    def part(scored: list[Scored]) -> dict[str, Any]:
        return {"total": _tally_data(total(scored), len(scored)),
                "steps": [{"step": s.step, **s.surprise.to_dict()} for s in scored]}

    traces = []
    for score in scores:
        entry = {"trace": str(score.trace_dir), "recorded": part(score.recorded)}
        if model:
            entry["repredicted"] = part(score.repredicted)
        traces.append(entry)
    overall = {"recorded": _tally_data(total([s for t in scores for s in t.recorded]),
                                       sum(len(t.recorded) for t in scores))}
    if model:
        overall["repredicted"] = _tally_data(total([s for t in scores for s in t.repredicted]),
                                             sum(len(t.repredicted) for t in scores))
    return {"model": model, "traces": traces, "overall": overall}
