"""Search in imagination (Snell et al.'s beam search against a process reward model, on web pages).

The K proposals start K paths. At each depth up to H, the world model predicts the last action of
every new path (on the imagined page the path has reached), and the verifier scores the imagined
trajectory so far — one process-level score per step. The B best paths are kept; the imagined
policy proposes up to B next actions for each kept path, and the search goes one level deeper.
Paths that answer the user, or for which the imagined policy has no valid next action, end there
but keep competing for a place in the beam. The FIRST action of the best path in the final beam is
the one that runs — even when that action scored worse on its own than another first action —
provided its path out-scores the greedy candidate's best path by the overrule margin (agent/graph.py).

A path's value (`aggregate`): "last" (default) is the verifier's score of its last step. The
verifier reads the whole imagined trajectory when it scores a step, so the last step's score
judges the path as a whole (Snell et al. found last-step aggregation of PRM scores best);
"min" is the cautious alternative (one bad imagined step sinks the path), "mean" the smoothing one.
Ties keep the earlier path, i.e. the policy's own ranking.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from agent.llm.protocol import LLM
from agent.proposer import CANDIDATES_SCHEMA
from agent.verifier import Score
from envs.actions import ANSWER_ACTIONS, ActionError, format_action, parse_action
from envs.types import Observation
from world_model.messages import PagePicture, shown_to
from world_model.templates import load_template
from world_model.world_model import (
    KNOWN_NOTE,
    ImaginedStep,
    Prediction,
    WorldModel,
    format_history,
    imagined_text,
    known_prediction,
)

EXPAND_PROMPT = FilePath(__file__).parent / "prompts" / "expand.txt"


@dataclass
class Path:
    """One imagined path: its actions, the prediction for each, and the verifier's score after each."""

    actions: list[str]
    steps: list[ImaginedStep] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    end: str | None = None  # why the path stops growing, when it does before the horizon

    def value(self, aggregate: str) -> float:
        values = [s.value for s in self.scores]
        if aggregate == "min":
            return min(values)
        if aggregate == "mean":
            return round(sum(values) / len(values), 4)
        return values[-1]

    def score(self, aggregate: str) -> Score:
        """The path as one Score: its value, with the last step's samples and critiques."""
        last = self.scores[-1]
        return Score(value=self.value(aggregate), samples=list(last.samples), reasons=list(last.reasons),
                     unreadable=last.unreadable, known=last.known)

    def to_dict(self, aggregate: str, kept: bool) -> dict[str, Any]:
        return {"actions": self.actions, "step_values": [s.value for s in self.scores],
                "value": self.value(aggregate), "end": self.end, "in_final_beam": kept}


@dataclass
class Imagination:
    """What the search asks: the world model's prediction, the verifier's score, the policy's next
    actions, each for a path on the same real page."""

    llm: LLM  # the policy's next actions
    world_model: WorldModel
    goal: str
    page_text: str
    history: Sequence[str]
    score: Callable[[str, list[ImaginedStep]], Awaitable[Score]]  # (first action, trajectory) -> Score
    picture: PagePicture | None = None  # the real page's, for the roles it is for (--vision)
    obs: Observation | None = None  # the real page: what it tells of a first action needs no model

    async def predict(self, path: Path) -> Prediction:
        """The page after the path's last action, given the imagined steps before it."""
        known = known_prediction(path.actions[0], self.obs, self.history) if self.obs and not path.steps else None
        if known is not None:
            return known
        return await self.world_model.predict(self.goal, self.page_text, self.history, path.steps, path.actions[-1],
                                              picture=self.picture)

    async def next_actions(self, path: Path, width: int) -> list[str]:
        """Up to `width` distinct, parseable next actions on the path's imagined page."""
        messages = load_template(EXPAND_PROMPT).render(
            goal=self.goal, history=format_history(self.history), observation=self.page_text,
            imagined_so_far=imagined_text(path.steps).strip(), k=width, picture=shown_to("policy", self.picture),
        )
        [answer] = await self.llm.complete("policy", messages, json_schema=CANDIDATES_SCHEMA)
        actions: list[str] = []
        for raw in _proposed(answer.text, answer.data):
            try:
                action = format_action(parse_action(raw))
            except ActionError:
                continue  # ids cannot be checked on an imagined page; unparseable answers just drop out
            if action not in actions and len(actions) < width:
                actions.append(action)
        return actions


async def beam_search(
    imagination: Imagination, candidates: Sequence[str], *, horizon: int, width: int, aggregate: str,
    gather: Callable[[Any], Awaitable[list[Any]]],
) -> tuple[list[Path], list[Path]]:
    """(final beam best first, every path scored) for the real candidates `candidates`."""
    frontier = [Path([action]) for action in candidates]
    beam: list[Path] = []
    scored: list[Path] = []
    for depth in range(1, horizon + 1):
        await gather(_extend(imagination, path) for path in frontier)
        scored += frontier
        pool = [p for p in beam if p.end] + frontier  # ended paths keep competing
        beam = sorted(pool, key=lambda p: p.value(aggregate), reverse=True)[:width]  # stable: ties keep order
        growing = [p for p in beam if not p.end]
        if depth == horizon or not growing:
            break
        frontier = []
        for path, actions in zip(growing, await gather(imagination.next_actions(p, width) for p in growing)):
            if not actions:
                path.end = "the imagined policy proposed no valid next action"
            frontier += [Path([*path.actions, a], list(path.steps), list(path.scores)) for a in actions]
        if not frontier:
            break
    return beam, scored


async def _extend(imagination: Imagination, path: Path) -> None:
    """Predict the path's last action and score the trajectory up to it."""
    path.steps.append(ImaginedStep(path.actions[-1], await imagination.predict(path)))
    path.scores.append(await imagination.score(path.actions[0], path.steps))
    if path.steps[-1].prediction.known:
        path.end = KNOWN_NOTE
    elif parse_action(path.actions[-1]).name in ANSWER_ACTIONS:
        path.end = "answers the user"


def _proposed(text: str, data: Any) -> list[str]:
    """Action texts from a {"candidates": [...]} answer, or the lines of a plain-text one."""
    if isinstance(data, dict) and isinstance(data.get("candidates"), list):
        return [str(item.get("action", "")) if isinstance(item, dict) else str(item) for item in data["candidates"]]
    if isinstance(data, dict) and "action" in data:
        return [str(data["action"])]
    return [line.strip().lstrip("-*0123456789.) ") for line in text.splitlines() if line.strip()]
