"""The planner as a LangGraph StateGraph: observe → propose → simulate → score → select → act → loop.

Strategies are settings of this one graph (agent/strategies.py): `reactive` goes propose → select,
`rerank` skips simulate, `dreamer` runs everything. Nodes are plain async functions over the parts
given to `build_graph`; only `act` touches the browser, and only with the chosen action.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Iterable, TypeVar

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.llm import LLM
from agent.proposer import Proposal, propose_candidates
from agent.state import (STOP_ANSWER, STOP_MAX_STEPS, STOP_REPEATED, STOP_TASK_DONE, STOP_UNPARSEABLE,
                         PlannerState, StepRecord, summarize)
from agent.strategies import PlannerConfig
from agent.verifier import Verifier
from envs.env import BrowserEnv
from envs.observation import render_text
from world_model.surprise import measure_surprise
from world_model.world_model import WorldModel

T = TypeVar("T")


@dataclass
class Parts:
    env: BrowserEnv
    llm: LLM  # the policy's proposals; the world model and verifier hold their own
    world_model: WorldModel
    verifier: Verifier
    config: PlannerConfig


def build_graph(parts: Parts) -> CompiledStateGraph:
    nodes = Nodes(parts)
    graph = StateGraph(PlannerState)
    graph.add_node("observe", nodes.observe)
    graph.add_node("propose", nodes.propose)
    graph.add_node("simulate", nodes.simulate)
    graph.add_node("score", nodes.score)
    graph.add_node("select", nodes.select)
    graph.add_node("act", nodes.act)

    graph.add_edge(START, "observe")
    graph.add_edge("observe", "propose")
    graph.add_conditional_edges("propose", nodes.after_propose, ["propose", "simulate", "score", "select", END])
    graph.add_edge("simulate", "score")
    graph.add_edge("score", "select")
    graph.add_edge("select", "act")
    graph.add_conditional_edges("act", nodes.after_act, ["observe", END])
    return graph.compile()


class Nodes:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.config = parts.config

    async def observe(self, state: PlannerState) -> dict[str, Any]:
        # The env already observed the page (reset/step); render it once for every prompt of the step.
        obs = state["observation"]
        return {"page_text": render_text(obs, self.config.observation_tokens), "step_started": time.perf_counter(),
                "proposal": None, "imagined": {}, "scores": {}, "choice": None}

    async def propose(self, state: PlannerState) -> dict[str, Any]:
        proposal = await propose_candidates(
            self.parts.llm, state["goal"], state["observation"], state["page_text"], state["history"],
            self.config.candidates, self.config.self_refine,
        )
        if not proposal.unparseable:
            return {"proposal": proposal, "parse_failures": 0}
        failures = state.get("parse_failures", 0) + 1
        stop = STOP_UNPARSEABLE if failures >= self.config.parse_failure_limit else None
        record = step_record(state, proposal, stop_reason=stop)
        return {"proposal": proposal, "parse_failures": failures, "record": record, "stop_reason": stop}

    def after_propose(self, state: PlannerState) -> str:
        if state.get("stop_reason"):
            return END
        if state["proposal"].unparseable:
            return "propose"
        if self.config.imagines:
            return "simulate"
        return "score" if self.config.scores else "select"

    async def simulate(self, state: PlannerState) -> dict[str, Any]:
        candidates = state["proposal"].candidates
        trajectories = await gather_all(
            self.parts.world_model.imagine(
                state["goal"], state["observation"], action, self.config.horizon,
                history=state["history"], page_text=state["page_text"],
            )
            for action in candidates
        )
        return {"imagined": dict(zip(candidates, trajectories))}

    async def score(self, state: PlannerState) -> dict[str, Any]:
        candidates, imagined = state["proposal"].candidates, state.get("imagined") or {}
        scores = await gather_all(
            self.parts.verifier.score(
                state["goal"], state["page_text"], state["history"], action,
                imagined.get(action) if self.config.imagines else None,
            )
            for action in candidates
        )
        return {"scores": dict(zip(candidates, scores))}

    async def select(self, state: PlannerState) -> dict[str, Any]:
        candidates, scores = state["proposal"].candidates, state.get("scores") or {}
        # max() keeps the first of equal scores: ties go to the policy's own ranking.
        choice = max(candidates, key=lambda a: scores[a].value) if scores else candidates[0]
        return {"choice": choice}

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
                "record": record, "stop_reason": stop}

    def after_act(self, state: PlannerState) -> str:
        return END if state.get("stop_reason") else "observe"


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
