"""The planner as a LangGraph StateGraph. One graph; each strategy (agent/config.py) is a choice
of the planning nodes a step runs between `propose` and `select`:

  observe → propose ─┬───────────────────────────→ select → act → observe …   reactive
                     ├→ score ───────────────────↗                           rerank
                     ├→ simulate → score ────────↗                           dreamer, lookahead (real where safe)
                     ├→ simulate → score → revise ↗                          revise (R rounds inside)
                     └→ search ──────────────────↗                           beam (in imagination), tree (real)
  adaptive: propose → assess → one of the rows above, picked per step from cheap difficulty signals;
            after rerank's scores it assesses once more and may escalate to simulate → score.

`select` applies the risk gate (agent/risk.py) for every strategy and may end the run instead of
acting. Nodes are plain async functions over the parts given to `build_graph`; only `act` touches
the task's page, and only with the chosen action (lookahead and tree try candidates in forked contexts;
tree resets a local site while it searches, and restores it by replaying the real history).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.config import PlannerConfig
from agent.llm.protocol import LLM
from agent.proposer import Proposal, propose_candidates
from agent.risk import gate, irreversible_reason
from agent.state import (
    STOP_ANSWER,
    STOP_MAX_STEPS,
    STOP_REFUSED,
    STOP_REPEATED,
    STOP_TASK_DONE,
    STOP_UNPARSEABLE,
    PlannerState,
    StepRecord,
    summarize,
)
from agent.strategies.adaptive import after_rerank, first_decision, propose_by_vote, step_signals
from agent.strategies.beam import Imagination, beam_search
from agent.strategies.lookahead import look_ahead
from agent.strategies.revise import Versions, revise_versions
from agent.strategies.tree import tree_search
from agent.verifier import Score, Verifier
from envs.env import BrowserEnv
from envs.rendering import render_text
from world_model.surprise import measure_surprise
from world_model.world_model import ImaginedStep, WorldModel

T = TypeVar("T")
PLANNING = ["simulate", "score", "search", "select"]  # where a step's planning starts, by its mode


@dataclass
class Parts:
    env: BrowserEnv
    llm: LLM  # the policy's proposals (and beam's imagined steps); the world model and verifier hold their own
    world_model: WorldModel
    verifier: Verifier
    config: PlannerConfig


def build_graph(parts: Parts, checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    nodes = Nodes(parts)
    graph = StateGraph(PlannerState)
    for name in ("observe", "propose", "assess", "simulate", "score", "revise", "search", "select", "act"):
        graph.add_node(name, getattr(nodes, name))

    graph.add_edge(START, "observe")
    graph.add_edge("observe", "propose")
    graph.add_conditional_edges("propose", nodes.after_propose, ["propose", "assess", *PLANNING, END])
    graph.add_conditional_edges("assess", nodes.planning, PLANNING)
    graph.add_edge("simulate", "score")
    graph.add_conditional_edges("score", nodes.after_score, ["assess", "revise", "select"])
    graph.add_edge("revise", "select")
    graph.add_edge("search", "select")
    graph.add_conditional_edges("select", nodes.after_select, ["act", END])
    graph.add_conditional_edges("act", nodes.after_act, ["observe", END])
    return graph.compile(checkpointer=checkpointer)


class Nodes:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.config = parts.config

    async def observe(self, state: PlannerState) -> dict[str, Any]:
        # The env already observed the page (reset/step); render it once for every prompt of the step.
        obs = state["observation"]
        return {"page_text": render_text(obs, self.config.observation_tokens), "step_started": time.perf_counter(),
                "proposal": None, "imagined": {}, "scores": {}, "choice": None, "plan": self.config.step_plan(),
                "decisions": [], "agreement": None, "search": [], "revision_note": None, "risky": {}, "gate": None, "lookahead": {}}

    async def propose(self, state: PlannerState) -> dict[str, Any]:
        goal, obs, page_text, history = state["goal"], state["observation"], state["page_text"], state["history"]
        agreement = None
        if self.config.strategy == "adaptive":  # several answers in one call: their agreement is a signal
            settings = self.config.adaptive
            proposal, agreement = await propose_by_vote(
                self.parts.llm, goal, obs, page_text, history, settings.k, settings.proposal_samples)
        else:
            proposal = await propose_candidates(
                self.parts.llm, goal, obs, page_text, history, state["plan"].k, self.config.self_refine)
        if not proposal.unparseable:
            return {"proposal": proposal, "parse_failures": 0, "agreement": agreement}
        failures = state.get("parse_failures", 0) + 1
        stop = STOP_UNPARSEABLE if failures >= self.config.parse_failure_limit else None
        record = step_record(state, proposal, stop_reason=stop)
        return {"proposal": proposal, "parse_failures": failures, "record": record, "stop_reason": stop}

    def after_propose(self, state: PlannerState) -> str:
        if state.get("stop_reason"):
            return END
        if state["proposal"].unparseable:
            return "propose"
        return "assess" if self.config.strategy == "adaptive" else self.planning(state)

    def planning(self, state: PlannerState) -> str:
        """The next planning node for the step's mode (select once its scores are in)."""
        mode = state["plan"].mode
        if mode == "reactive" or state.get("scores"):
            return "select"
        return {"rerank": "score", "beam": "search", "tree": "search"}.get(mode, "simulate")

    async def assess(self, state: PlannerState) -> dict[str, Any]:
        """adaptive: choose the step's mode from its signals; after rerank, keep it or escalate."""
        settings, decisions, proposal = self.config.adaptive, state["decisions"], state["proposal"]
        if not decisions:
            obs, top = state["observation"], proposal.candidates[0]
            signals = step_signals(obs, state.get("visited", []), state.get("last_failed", False),
                                   state.get("last_surprise"), state.get("last_mode"), state["agreement"],
                                   irreversible_reason(top, obs))
            decision = first_decision(signals, settings)
        else:
            decision = after_rerank(decisions[-1].signals, state["scores"], settings)
        update = {"plan": decision.plan, "decisions": [*decisions, decision],
                  "proposal": replace(proposal, candidates=proposal.candidates[:decision.plan.k])}
        if decisions and decision.plan.mode != "rerank":
            update["scores"] = {}  # imagined outcomes are scored afresh; rerank's scores stay in the decision
        return update

    async def simulate(self, state: PlannerState) -> dict[str, Any]:
        imagined, how = dict(state.get("imagined") or {}), dict(state.get("lookahead") or {})
        todo = [a for a in state["proposal"].candidates if a not in imagined]
        if state["plan"].mode == "lookahead":  # real outcomes where safe (agent/strategies/lookahead.py); the rest imagined
            tried = await look_ahead(self.parts.env, state["observation"], state["history"], todo,
                                     any_origin=self.config.lookahead_any_origin)
            imagined.update(tried.real)
            how.update(tried.how)
            todo = [a for a in todo if a not in imagined]
        imagined.update(zip(todo, await gather_all(self.imagine(state, a) for a in todo)))
        return {"imagined": imagined, "lookahead": how}

    async def score(self, state: PlannerState) -> dict[str, Any]:
        scores, imagined = dict(state.get("scores") or {}), state.get("imagined") or {}
        todo = [a for a in state["proposal"].candidates if a not in scores]
        trajectories = [imagined.get(a) if state["plan"].imagines else None for a in todo]
        scores.update(zip(todo, await gather_all(self.judge(state, a, t) for a, t in zip(todo, trajectories))))
        return {"scores": scores}

    def after_score(self, state: PlannerState) -> str:
        mode = state["plan"].mode
        if self.config.strategy == "adaptive" and mode == "rerank":
            return "assess"
        return "revise" if mode == "revise" else "select"

    async def revise(self, state: PlannerState) -> dict[str, Any]:
        proposal = state["proposal"]
        versions = Versions(list(proposal.candidates), dict(proposal.reasons), dict(state["imagined"]),
                            dict(state["scores"]))
        versions = await revise_versions(
            self.parts.llm, state["goal"], state["observation"], state["page_text"], state["history"], versions,
            self.config.revisions, imagine=lambda a: self.imagine(state, a), score=lambda a, t: self.judge(state, a, t))
        return {"proposal": replace(proposal, candidates=versions.actions, reasons=versions.reasons),
                "imagined": versions.imagined, "scores": versions.scores, "revision_note": versions.note}

    async def search(self, state: PlannerState) -> dict[str, Any]:
        if state["plan"].mode == "tree":  # in the real environment, not in imagination (agent/strategies/tree.py)
            return await tree_search(self.parts, state)
        plan, aggregate = state["plan"], self.config.beam_aggregate
        imagination = Imagination(self.parts.llm, state["goal"], state["page_text"], state["history"],
                                  score=lambda a, steps: self.judge(state, a, steps))
        beam, scored = await beam_search(imagination, state["proposal"].candidates, horizon=plan.horizon,
                                         width=plan.width, aggregate=aggregate, gather=gather_all)
        best = {}
        for path in beam:  # best first: each first action keeps its best path in the final beam
            best.setdefault(path.actions[0], path)
        return {"imagined": {a: p.steps for a, p in best.items()},
                "scores": {a: p.score(aggregate) for a, p in best.items()},
                "search": [p.to_dict(aggregate, kept=any(p is b for b in beam)) for p in scored]}

    async def select(self, state: PlannerState) -> dict[str, Any]:
        obs, imagined, scores = state["observation"], state.get("imagined") or {}, state.get("scores") or {}
        candidates = state["proposal"].candidates
        # Scored candidates by score, then unscored ones (pruned by beam); sorted() keeps the policy's
        # order among equals, so ties go to the policy's own ranking.
        ranked = sorted(candidates, key=lambda a: (a not in scores, -scores[a].value if a in scores else 0.0))
        risky = {}
        for action in candidates:
            why = irreversible_reason(action, obs, imagined[action][0].prediction if imagined.get(action) else None)
            if why:
                risky[action] = why
        decision = gate(ranked, scores, risky, safe=self.config.safe, margin=self.config.risk_margin)
        update = {"choice": decision.choice, "risky": risky, "gate": decision.note}
        if decision.choice is None:  # nothing may run: the step ends the run, with the gate's reason
            update |= {"stop_reason": STOP_REFUSED,
                       "record": step_record({**state, **update}, state["proposal"], stop_reason=STOP_REFUSED)}
        return update

    def after_select(self, state: PlannerState) -> str:
        return END if state.get("stop_reason") else "act"

    async def act(self, state: PlannerState) -> dict[str, Any]:
        before, choice = state["observation"], state["choice"]
        after, reward, done, _, info = await self.parts.env.step(choice)
        imagined = (state.get("imagined") or {}).get(choice)
        surprise = measure_surprise(choice, imagined[0].prediction, before, after) if imagined else None
        history = [*state["history"], choice]
        stop = None
        if info.get("answer") is not None:
            stop = STOP_ANSWER
        elif done:
            stop = STOP_TASK_DONE
        elif len(history) >= self.config.repeat_limit and len(set(history[-self.config.repeat_limit:])) == 1:
            stop = STOP_REPEATED
        elif len(history) >= self.config.max_steps:
            stop = STOP_MAX_STEPS
        record = step_record(state, state["proposal"], choice=choice, execution_error=after.last_action_error,
                             surprise=surprise, reward=reward, stop_reason=stop)
        return {"observation": after, "history": history, "reward": reward, "answer": info.get("answer"),
                "record": record, "stop_reason": stop, "visited": [*state.get("visited", []), before.url],
                "last_failed": bool(info.get("action_error")), "last_surprise": surprise.score if surprise else None,
                "last_mode": state["plan"].mode}

    def after_act(self, state: PlannerState) -> str:
        return END if state.get("stop_reason") else "observe"

    async def imagine(self, state: PlannerState, action: str) -> list[ImaginedStep]:
        return await self.parts.world_model.imagine(
            state["goal"], state["observation"], action, state["plan"].horizon,
            history=state["history"], page_text=state["page_text"])

    async def judge(self, state: PlannerState, action: str, imagined: list[ImaginedStep] | None) -> Score:
        return await self.parts.verifier.score(state["goal"], state["page_text"], state["history"], action, imagined,
                                               samples=state["plan"].samples)


def step_record(state: PlannerState, proposal: Proposal | None, **fields: Any) -> StepRecord:
    """The current step as far as it got — also used by the loop when a run stops mid-step."""
    return StepRecord(
        step=len(state.get("history", [])) + 1,
        observation=summarize(state["observation"]),
        candidates=list(proposal.candidates) if proposal else [],
        reasons=dict(proposal.reasons) if proposal else {},
        rejected=list(proposal.rejected) if proposal else [],
        refined_out=list(proposal.refined_out) if proposal else [],
        imagined=dict(state.get("imagined") or {}),
        scores=dict(state.get("scores") or {}),
        seconds=time.perf_counter() - state.get("step_started", time.perf_counter()),
        mode=state["plan"].mode if state.get("plan") else None,
        adaptive=[d.to_dict() for d in state.get("decisions") or []],
        search=list(state.get("search") or []),
        revision_note=state.get("revision_note"),
        risky=dict(state.get("risky") or {}),
        gate=state.get("gate"),
        lookahead=dict(state.get("lookahead") or {}),
        **fields,
    )


async def gather_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Run concurrently and wait for all of them (calls in flight finish and are counted), then
    raise the first failure, if any."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)  # type: ignore[arg-type]
