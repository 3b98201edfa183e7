"""`forethought wm-eval`: how right the world model was about the actions that really ran.

For every executed action with a recorded prediction, world_model/surprise.py compares what was
predicted with the real next state; accuracy = 1 - surprise (1: everything checked came true).
With another model, the same actions are predicted again on the recorded pages and scored the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.rendering import render_text
from traces.schema import Trace, read_trace
from world_model.surprise import measure_surprise
from world_model.world_model import LLMWorldModel, Prediction


@dataclass
class Scored:
    step: int
    action: str
    accuracy: float
    missed: list[str] = field(default_factory=list)


@dataclass
class TraceScore:
    trace_dir: Path
    recorded: list[Scored] = field(default_factory=list)  # the predictions made during the run
    repredicted: list[Scored] = field(default_factory=list)  # by the model passed with --model

    @staticmethod
    def mean(scored: list[Scored]) -> float | None:
        return sum(s.accuracy for s in scored) / len(scored) if scored else None


def _prediction(data: dict[str, Any]) -> Prediction:
    return Prediction(**{k: data[k] for k in ("description", "url", "appear", "disappear", "structured") if k in data})


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
            result.recorded.append(Scored(step["step"], action, 1 - surprise.score, surprise.missed))
        if world_model is not None:
            # The model sees the page as the agent saw it: the before state, rendered the same way.
            [first, *_] = await world_model.imagine(trace.goal, before, action, 1, history=_history(trace, step),
                                                   page_text=render_text(before, tokens))
            surprise = measure_surprise(action, first.prediction, before, after)
            result.repredicted.append(Scored(step["step"], action, 1 - surprise.score, surprise.missed))
    return result


def format_scores(scores: list[TraceScore], model: str | None = None) -> str:
    """Per-trace and overall accuracy, as printed by wm-eval."""
    lines = []

    def line(label: str, scored: list[Scored]) -> str:
        mean = TraceScore.mean(scored)
        return f"  {label}: " + (f"accuracy {mean:.3f} over {len(scored)} actions" if mean is not None
                                 else "no predictions to score")

    for score in scores:
        lines.append(str(score.trace_dir))
        lines.append(line("recorded predictions", score.recorded))
        if model:
            lines.append(line(model, score.repredicted))
    lines.append("overall")
    lines.append(line("recorded predictions", [s for t in scores for s in t.recorded]))
    if model:
        lines.append(line(model, [s for t in scores for s in t.repredicted]))
    return "\n".join(lines)
