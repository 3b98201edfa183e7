"""What flows through the planner graph, and the record kept of each step."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

from agent.config import StepPlan
from agent.proposer import Proposal
from agent.strategies.adaptive import Decision, Signals
from agent.verifier import Score
from envs.types import Element, Observation, Tab
from world_model.surprise import Surprise
from world_model.world_model import ImaginedStep, Prediction

# Why a run ended (RunResult.stop_reason).
STOP_ANSWER = "answer"  # send_msg_to_user / stop [..] / report_infeasible ("N/A")
STOP_TASK_DONE = "task_done"  # the task itself said it is over (e.g. a MiniWoB++ episode ended)
STOP_MAX_STEPS = "max_steps"
STOP_REPEATED = "repeated_action"
STOP_UNPARSEABLE = "unparseable_proposals"
STOP_REFUSED = "refused_irreversible"  # the risk gate let no candidate run (safe mode, or no margin)
STOP_BUDGET = "budget_exceeded"
STOP_LLM_ERROR = "llm_error"  # the model failed for good (after retries)
STOP_BROWSER_CRASHED = "browser_crashed"  # the browser died and could not be started again
STOP_TIMEOUT = "timeout"  # the run's wall-clock limit (PlannerConfig.timeout_s, --timeout) was reached
STOP_ERROR = "error"  # anything else; the run re-raises it after writing result.json

# The classes a planner state holds: the only ones its checkpoints may load back (agent/loop.py).
STATE_TYPES = [(cls.__module__, cls.__name__) for cls in (
    Observation, Element, Tab, Proposal, StepPlan, Decision, Signals, Score, ImaginedStep, Prediction, Surprise)]


@dataclass
class StepRecord:
    """One real step (or one failed proposal): one line of steps.jsonl."""

    step: int  # 1-based index of the real action this step chose
    observation: dict[str, Any]  # summary of the page the step started from
    candidates: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    rejected: list[dict[str, str]] = field(default_factory=list)  # policy answers that were not valid actions
    refined_out: list[str] = field(default_factory=list)
    imagined: dict[str, list[ImaginedStep]] = field(default_factory=dict)
    scores: dict[str, Score] = field(default_factory=dict)
    choice: str | None = None
    execution_error: str | None = None
    surprise: Surprise | None = None
    reward: float = 0.0
    seconds: float = 0.0
    stop_reason: str | None = None  # set on the step that ended the run
    mode: str | None = None  # what the step ran: reactive, rerank, dreamer, revise or beam
    adaptive: list[dict[str, Any]] = field(default_factory=list)  # adaptive's decisions: mode, K/H/m, why, signals
    search: list[dict[str, Any]] = field(default_factory=list)  # beam: every path scored, with its step values
    revision_note: str | None = None  # revise: why revising stopped
    risky: dict[str, str] = field(default_factory=dict)  # candidate -> why it is predicted irreversible
    gate: str | None = None  # what the risk gate did, when it did anything
    lookahead: dict[str, str] = field(default_factory=dict)  # lookahead: candidate -> "real" or "imagined: why"
    # The greedy candidate (the first proposed: what a reactive step would run), and whether the step ran
    # another action instead (a verdict beat it by the overrule margin, or the risk gate held it back).
    greedy: str | None = None
    overruled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "observation": self.observation,
            "candidates": self.candidates,
            "reasons": self.reasons,
            "rejected": self.rejected,
            "refined_out": self.refined_out,
            "imagined": {a: [s.to_dict() for s in steps] for a, steps in self.imagined.items()},
            "scores": {a: s.to_dict() for a, s in self.scores.items()},
            "choice": self.choice,
            "execution_error": self.execution_error,
            "surprise": self.surprise.to_dict() if self.surprise else None,
            "reward": self.reward,
            "seconds": round(self.seconds, 4),
            "stop_reason": self.stop_reason,
            "mode": self.mode,
            "adaptive": self.adaptive,
            "search": self.search,
            "revision_note": self.revision_note,
            "risky": self.risky,
            "gate": self.gate,
            "lookahead": self.lookahead,
            "greedy": self.greedy,
            "overruled": self.overruled,
        }


STATE_TYPES.append((__name__, "StepRecord"))


@dataclass
class Step:
    """What the current step has worked out so far: the one declaration of a step's scratch fields.
    `observe` starts a fresh Step, so nothing of one step leaks into the next."""

    page_text: str = ""  # the observation as the models read it
    started: float = 0.0  # perf_counter() when the step began
    plan: StepPlan | None = None  # the step's mode and K/H/m (adaptive sets it in `assess`)
    proposal: Proposal | None = None
    decisions: list[Decision] = field(default_factory=list)  # adaptive's decisions this step
    agreement: float | None = None  # adaptive: share of sampled proposals agreeing on the top action
    imagined: dict[str, list[ImaginedStep]] = field(default_factory=dict)  # candidate -> imagined (or real) steps
    lookahead: dict[str, str] = field(default_factory=dict)  # lookahead, tree: candidate -> "real" or "imagined: why"
    scores: dict[str, Score] = field(default_factory=dict)  # candidate -> verifier score
    search: list[dict[str, Any]] = field(default_factory=list)  # beam, tree: the scored paths
    revision_note: str | None = None  # revise: why revising stopped
    risky: dict[str, str] = field(default_factory=dict)  # candidate -> why it is predicted irreversible
    gate: str | None = None  # what the risk gate did, when it did anything
    choice: str | None = None

    @property
    def planned(self) -> StepPlan:
        if self.plan is None:
            raise RuntimeError("the step has no plan yet (adaptive plans in `assess`)")
        return self.plan

    @property
    def proposed(self) -> Proposal:
        if self.proposal is None:
            raise RuntimeError("the step has no proposal yet")
        return self.proposal


STATE_TYPES.append((__name__, "Step"))


class PlannerState(TypedDict, total=False):
    """What flows through the graph: the run so far, and the step in progress (`step`)."""

    goal: str
    observation: Observation  # the real page now
    history: list[str]  # real actions executed so far
    step: Step
    parse_failures: int  # proposals in a row without a usable action
    visited: list[str]  # URLs the agent has acted on (adaptive: is this page new?)
    last_failed: bool  # the last real action failed (its own error, not a page's dialog or download)
    last_surprise: float | None  # the last real step's surprise (None when it imagined nothing)
    last_mode: str  # the mode the last real step ran (adaptive: no two beam searches in a row on surprise)
    record: StepRecord | None  # the latest finished step (the loop writes each one out)
    reward: float
    answer: str | None
    stop_reason: str | None


def step_record(state: PlannerState, step: Step | None = None, **fields: Any) -> StepRecord:
    """The current step as far as it got (`step`: its newest version, default the state's); also used
    by the loop when a run stops mid-step."""
    step = step or state.get("step") or Step()
    proposal = step.proposal
    greedy = proposal.candidates[0] if proposal and proposal.candidates else None
    choice = fields.get("choice")
    return StepRecord(
        step=len(state.get("history", [])) + 1,
        observation=summarize(state["observation"]),
        candidates=list(proposal.candidates) if proposal else [],
        reasons=dict(proposal.reasons) if proposal else {},
        rejected=list(proposal.rejected) if proposal else [],
        refined_out=list(proposal.refined_out) if proposal else [],
        imagined=dict(step.imagined),
        scores=dict(step.scores),
        seconds=time.perf_counter() - step.started if step.started else 0.0,
        mode=step.plan.mode if step.plan else None,
        adaptive=[d.to_dict() for d in step.decisions],
        search=list(step.search),
        revision_note=step.revision_note,
        risky=dict(step.risky),
        gate=step.gate,
        lookahead=dict(step.lookahead),
        greedy=greedy,
        overruled=choice is not None and choice != greedy,
        **fields,
    )


def summarize(obs: Observation) -> dict[str, Any]:
    """The observation, briefly, for step logs (the traces issue stores full observations)."""
    return {
        "url": obs.url,
        "title": obs.title,
        "tabs": len(obs.tabs),
        "elements": len(obs.elements),
        "interactive": sum(1 for e in obs.elements if e.id is not None),
        "focused_id": obs.focused_id,
        "last_action_error": obs.last_action_error,
    }
