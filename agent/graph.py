"""The planner as a LangGraph StateGraph. One graph; each strategy (agent/config.py) is a choice
of the planning nodes a step runs between `propose` and `select`:

  observe → propose ─┬───────────────────────────→ select → act → observe …   reactive
                     ├→ score ───────────────────↗                           rerank
                     ├→ simulate → score ────────↗                           dreamer, lookahead (real where safe)
                     ├→ simulate → score → revise ↗                          revise (R rounds inside)
                     └→ search ──────────────────↗                           beam (in imagination), tree (real)
  adaptive: propose → assess → one of the rows above, picked per step from cheap difficulty signals;
            after rerank's scores it assesses once more and may escalate to simulate → score.

`select` keeps the greedy candidate (the first proposal) unless a verdict beats it by the config's
`overrule_margin`, then applies the risk gate (agent/risk.py) for every strategy and may end the run
instead of acting. Nodes are plain async functions over the parts given to `build_graph`; only `act` touches
the task's page, and only with the chosen action (lookahead and tree try candidates in forked contexts;
tree resets a local site while it searches, and restores it by replaying the real history).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, get_args

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.config import PlannerConfig
from agent.llm.protocol import LLM
from agent.proposer import propose_candidates
from agent.risk import gate, irreversible_reason, preference_order
from agent.state import (
    STOP_ANSWER,
    STOP_MAX_STEPS,
    STOP_REFUSED,
    STOP_REPEATED,
    STOP_TASK_DONE,
    STOP_UNPARSEABLE,
    PlannerState,
    Step,
    step_record,
)
from agent.strategies.adaptive import after_rerank, first_decision, propose_by_vote, step_signals
from agent.strategies.beam import Imagination, Path, beam_search
from agent.strategies.lookahead import look_ahead
from agent.strategies.revise import Versions, revise_versions
from agent.strategies.tree import tree_search
from agent.verifier import Score, Verifier
from agent.vision import page_picture
from envs.rendering import render_text
from envs.types import Env
from world_model.messages import PagePicture
from world_model.surprise import measure_surprise
from world_model.world_model import ImaginedStep, WorldModel

T = TypeVar("T")
Planning = Literal["simulate", "score", "search", "select"]
PLANNING: list[str] = list(get_args(Planning))  # where a step's planning starts, by mode
END: Literal["__end__"] = "__end__"  # langgraph.graph.END, typed for the routers
Update = dict[str, Any]  # what a node changes in the planner state


@dataclass
class Parts:
    env: Env
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


def changed(state: PlannerState, **fields: Any) -> Update:
    """The update that sets `fields` of the step in progress."""
    return {"step": replace(state["step"], **fields)}


class Nodes:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.config = parts.config
        # The step's page picture (--vision), kept out of the state: the state is checkpointed at every node.
        self.picture: PagePicture | None = None

    async def observe(self, state: PlannerState) -> Update:
        # The env already observed the page (reset/step); render it once for every prompt of the step.
        page_text = render_text(state["observation"], self.config.observation_tokens)
        self.picture = None
        if self.config.vision:  # before any search changes the tab
            self.picture = await page_picture(self.parts.env, state["observation"], self.config.vision)
        return {"step": Step(page_text=page_text, started=time.perf_counter(), plan=self.config.step_plan())}

    async def propose(self, state: PlannerState) -> Update:
        goal, obs, history, step = state["goal"], state["observation"], state["history"], state["step"]
        agreement = None
        if self.config.strategy == "adaptive":  # several answers in one call: their agreement is a signal
            settings = self.config.adaptive
            proposal, agreement = await propose_by_vote(
                self.parts.llm, goal, obs, step.page_text, history, settings.k, settings.proposal_samples,
                picture=self.picture)
        else:
            proposal = await propose_candidates(
                self.parts.llm, goal, obs, step.page_text, history, step.planned.k, self.config.self_refine,
                picture=self.picture)
        step = replace(step, proposal=proposal, agreement=agreement)
        if not proposal.unparseable:
            return {"step": step, "parse_failures": 0}
        failures = state.get("parse_failures", 0) + 1
        stop = STOP_UNPARSEABLE if failures >= self.config.parse_failure_limit else None
        return {"step": step, "parse_failures": failures, "record": step_record(state, step, stop_reason=stop),
                "stop_reason": stop}

    def after_propose(self, state: PlannerState) -> Literal["propose", "assess", "simulate", "score", "search",
                                                            "select", "__end__"]:
        if state.get("stop_reason"):
            return END
        if state["step"].proposed.unparseable:
            return "propose"
        return "assess" if self.config.strategy == "adaptive" else self.planning(state)

    def planning(self, state: PlannerState) -> Planning:
        """The next planning node for the step's mode (select once its scores are in)."""
        step = state["step"]
        mode = step.planned.mode
        if mode == "reactive" or step.scores:
            return "select"
        if mode == "rerank":
            return "score"
        return "search" if mode in ("beam", "tree") else "simulate"

    async def assess(self, state: PlannerState) -> Update:
        """adaptive: choose the step's mode from its signals; after rerank, keep it or escalate."""
        settings, step = self.config.adaptive, state["step"]
        proposal = step.proposed
        if not step.decisions:
            obs, top = state["observation"], proposal.candidates[0]
            signals = step_signals(obs, state.get("visited", []), state.get("last_failed", False),
                                   state.get("last_surprise"), state.get("last_mode"), step.agreement,
                                   irreversible_reason(top, obs))
            decision = first_decision(signals, settings)
        else:
            decision = after_rerank(step.decisions[-1].signals, step.scores, settings)
        # Imagined outcomes are scored afresh; rerank's scores stay in its decision.
        scores = {} if step.decisions and decision.plan.mode != "rerank" else step.scores
        return changed(state, plan=decision.plan, decisions=[*step.decisions, decision], scores=scores,
                       proposal=replace(proposal, candidates=proposal.candidates[:decision.plan.k]))

    async def simulate(self, state: PlannerState) -> Update:
        step = state["step"]
        imagined, how = dict(step.imagined), dict(step.lookahead)
        todo = [a for a in step.proposed.candidates if a not in imagined]
        if step.planned.mode == "lookahead":  # real outcomes where safe (agent/strategies/lookahead.py)
            tried = await look_ahead(self.parts.env, state["observation"], state["history"], todo,
                                     any_origin=self.config.lookahead_any_origin)
            imagined.update(tried.real)
            how.update(tried.how)
            todo = [a for a in todo if a not in imagined]
        imagined.update(zip(todo, await gather_all(self.imagine(state, a) for a in todo)))
        return changed(state, imagined=imagined, lookahead=how)

    async def score(self, state: PlannerState) -> Update:
        step = state["step"]
        scores = dict(step.scores)
        todo = [a for a in step.proposed.candidates if a not in scores]
        trajectories = [step.imagined.get(a) if step.planned.imagines else None for a in todo]
        scores.update(zip(todo, await gather_all(self.judge(state, a, t) for a, t in zip(todo, trajectories))))
        return changed(state, scores=scores)

    def after_score(self, state: PlannerState) -> Literal["assess", "revise", "select"]:
        mode = state["step"].planned.mode
        if self.config.strategy == "adaptive" and mode == "rerank":
            return "assess"
        return "revise" if mode == "revise" else "select"

    async def revise(self, state: PlannerState) -> Update:
        step = state["step"]
        proposal = step.proposed
        versions = Versions(list(proposal.candidates), dict(proposal.reasons), dict(step.imagined), dict(step.scores))
        versions = await revise_versions(
            self.parts.llm, state["goal"], state["observation"], step.page_text, state["history"], versions,
            self.config.revisions, imagine=lambda a: self.imagine(state, a), score=lambda a, t: self.judge(state, a, t),
            picture=self.picture)
        return changed(state, proposal=replace(proposal, candidates=versions.actions, reasons=versions.reasons),
                       imagined=versions.imagined, scores=versions.scores, revision_note=versions.note)

    async def search(self, state: PlannerState) -> Update:
        step, goal, history = state["step"], state["goal"], state["history"]
        plan, candidates = step.planned, step.proposed.candidates
        if plan.mode == "tree":  # in the real environment, not in imagination (agent/strategies/tree.py)
            found = await tree_search(self.parts, goal, state["observation"], step.page_text, history, candidates,
                                      plan, picture=self.picture)
            return changed(state, imagined=found.imagined, scores=found.scores, lookahead=found.how,
                           search=found.nodes)
        aggregate = self.config.beam_aggregate
        imagination = Imagination(self.parts.llm, self.parts.world_model, goal, step.page_text, history,
                                  score=lambda a, steps: self.judge(state, a, steps), picture=self.picture,
                                  obs=state["observation"])
        beam, scored = await beam_search(imagination, candidates, horizon=plan.horizon, width=plan.width,
                                         aggregate=aggregate, gather=gather_all)
        best: dict[str, Path] = {}
        for path in beam:  # best first: each first action keeps its best path in the final beam
            best.setdefault(path.actions[0], path)
        greedy = candidates[0]
        if greedy not in best:  # pruned: its best scored path is what a winner must beat by the margin
            best[greedy] = max((p for p in scored if p.actions[0] == greedy), key=lambda p: p.value(aggregate))
        return changed(state, imagined={a: p.steps for a, p in best.items()},
                       scores={a: p.score(aggregate) for a, p in best.items()},
                       search=[p.to_dict(aggregate, kept=any(p is b for b in beam)) for p in scored])

    async def select(self, state: PlannerState) -> Update:
        obs, step = state["observation"], state["step"]
        candidates, imagined, scores = step.proposed.candidates, step.imagined, step.scores
        # The greedy candidate (the first) unless a verdict beats it by the margin (agent/risk.py).
        ranked = preference_order(candidates, scores, self.config.overrule_margin)
        risky = {}
        for action in candidates:
            why = irreversible_reason(action, obs, imagined[action][0].prediction if imagined.get(action) else None)
            if why:
                risky[action] = why
        decision = gate(ranked, scores, risky, safe=self.config.safe, margin=self.config.risk_margin)
        step = replace(step, choice=decision.choice, risky=risky, gate=decision.note)
        if decision.choice is not None:
            return {"step": step}
        # Nothing may run: the step ends the run, with the gate's reason.
        return {"step": step, "stop_reason": STOP_REFUSED,
                "record": step_record(state, step, stop_reason=STOP_REFUSED)}

    def after_select(self, state: PlannerState) -> Literal["act", "__end__"]:
        return END if state.get("stop_reason") else "act"

    async def act(self, state: PlannerState) -> Update:
        before, step = state["observation"], state["step"]
        choice = step.choice
        assert choice is not None  # select ends the run when nothing may run
        after, reward, done, _, info = await self.parts.env.step(choice)
        imagined = step.imagined.get(choice)
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
        record = step_record(state, choice=choice, execution_error=after.last_action_error,
                             surprise=surprise, reward=reward, stop_reason=stop)
        return {"observation": after, "history": history, "reward": reward, "answer": info.get("answer"),
                "record": record, "stop_reason": stop, "visited": [*state.get("visited", []), before.url],
                "last_failed": bool(info.get("action_error")), "last_surprise": surprise.score if surprise else None,
                "last_mode": step.planned.mode}

    def after_act(self, state: PlannerState) -> Literal["observe", "__end__"]:
        return END if state.get("stop_reason") else "observe"

    async def imagine(self, state: PlannerState, action: str) -> list[ImaginedStep]:
        step = state["step"]
        return await self.parts.world_model.imagine(
            state["goal"], state["observation"], action, step.planned.horizon,
            history=state["history"], page_text=step.page_text, picture=self.picture)

    async def judge(self, state: PlannerState, action: str, imagined: list[ImaginedStep] | None) -> Score:
        step = state["step"]
        return await self.parts.verifier.score(state["goal"], step.page_text, state["history"], action, imagined,
                                               samples=step.planned.samples, picture=self.picture)


async def gather_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Run concurrently and wait for all of them (calls in flight finish and are counted), then
    raise the first failure, if any."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)  # type: ignore[arg-type]
