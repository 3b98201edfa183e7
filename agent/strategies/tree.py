"""Tree search in the real environment (the `tree` strategy; Koh et al., "Tree Search for Language
Model Agents", 2024): best-first search over REAL pages, backtracking by reset and replay. The
expensive upper bound on what planning can buy: no world model stands between a path and its value.

A node is a path of actions from the real page the agent sees (the task's real history is the common
prefix of every path). The K proposals are the root's children. Trying a node:

  1. BACKTRACK: a fresh forked browser context (agent/lookahead.ForkSession: the main context's
     cookies and local storage, none of its page state) and, on a local site of a LocalTask, the
     site's database reset to pristine (what the runner does before every task);
  2. REPLAY the prefix: the task's start URL, the real history (which must reproduce the page the
     agent sees, else nothing more is tried for real this step), then the parent's path;
  3. run the node's action, observe the real outcome, and score the real trajectory with the verifier.

The frontier is ordered by value: the best tried node that can grow (real, not an answer, shallower
than the horizon D) is expanded next — the policy proposes K actions on its REAL page and each is
tried. The search stops after N expansions, when nothing can grow, or when a node scores 1.0
(complete). Every candidate gets the value and path of the best node under it, so the FIRST action of
the best real path runs — even when a sibling scored better at depth 1 — provided it out-scores the
greedy candidate's best node by the overrule margin (agent/graph.py).

Why reset-and-replay rather than holding writes back (as lookahead does): most steps worth searching
on a local site write to the server (add to cart, post, comment), and a reset makes trying them
harmless. The price is restoring the main run: the site is left as the real history made it by a
last reset and replay of the real history (in a fork; the main page is never touched), and whether
that reproduced the page is recorded. Servers that cannot be reset (any other local page) keep
lookahead's rule instead: requests that could change server state are held back in the fork, and a
node that needs one is imagined. Nodes that answer the user, nodes that cannot be reproduced, and
every node on a page whose origin is not local (file:// and 127.0.0.1/localhost only) are imagined
by the world model from their parent's real page, as dreamer would, with the reason recorded.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import StorageState

from agent.config import PlannerConfig, StepPlan
from agent.llm.protocol import LLM
from agent.proposer import propose_candidates
from agent.strategies.lookahead import (
    NO_BROWSER,
    REAL,
    REAL_NOTE,
    ForkSession,
    first_line,
    hold_back_writes,
    observe_fork,
    page_reason,
    real_outcome,
    run_in_fork,
    same_page,
)
from agent.verifier import Score, Verifier
from envs.actions import ANSWER_ACTIONS, parse_action
from envs.env import BrowserEnv
from envs.guard import OriginGuard, task_start_urls
from envs.rendering import render_text
from envs.types import Env, Observation
from world_model.messages import PagePicture
from world_model.world_model import ImaginedStep, WorldModel

COMPLETE = 1.0  # a node this good ends the search


class SearchParts(Protocol):
    """What the search uses of the graph's parts (agent/graph.Parts)."""

    env: Env
    llm: LLM
    world_model: WorldModel
    verifier: Verifier
    config: PlannerConfig


@dataclass
class Node:
    """A path from the real page, its steps (real outcomes; the last one imagined when it could not be
    tried) and the verifier's value of where it leads."""

    actions: list[str]
    steps: list[ImaginedStep]
    how: str  # "real", or "imagined: <why>"
    replayed: int = 0  # actions replayed in its fork before its own: real history + the parent's path
    page: Observation | None = None  # the real page it reaches (None when imagined)
    score: Score | None = None
    expanded: bool = False
    end: str | None = None  # why it did not grow, when it was expanded without children

    @property
    def value(self) -> float:
        return self.score.value if self.score else 0.0

    def to_dict(self, best: bool) -> dict[str, Any]:
        return {"actions": self.actions, "value": self.value, "how": self.how, "replayed": self.replayed,
                "expanded": self.expanded, "end": self.end, "best": best}


@dataclass
class TreeResult:
    """One `tree` step's outcome: per candidate, the best real path under it (its steps, its value),
    how each candidate was tried, and every node tried, in order."""

    imagined: dict[str, list[ImaginedStep]]
    scores: dict[str, Score]
    how: dict[str, str]  # candidate -> "real" or "imagined: why"
    nodes: list[dict[str, Any]]


async def tree_search(parts: SearchParts, goal: str, observation: Observation, page_text: str,
                      history: Sequence[str], candidates: Sequence[str], plan: StepPlan, *,
                      picture: PagePicture | None = None) -> TreeResult:
    """Search from the real page `observation`, reached by the real `history`, starting with `candidates`.
    `picture` is the real page's (--vision); the pages reached in forks are shown as text alone."""
    if not isinstance(parts.env, BrowserEnv):
        raise TypeError(f"tree search tries candidates for real in browser forks: {NO_BROWSER}")
    search = RealSearch(parts, parts.env, goal, observation, page_text, history, plan, picture)
    try:
        await search.run(candidates)
    finally:
        restored = await search.restore()
    best: dict[str, Node] = {}
    for node in sorted(search.tried, key=lambda n: -n.value):  # stable: earlier nodes win ties
        best.setdefault(node.actions[0], node)
    record = [node.to_dict(best=any(node is b for b in best.values())) for node in search.tried]
    return TreeResult(imagined={a: n.steps for a, n in best.items()},
                      scores={a: n.score for a, n in best.items() if n.score is not None},
                      how={n.actions[0]: n.how for n in search.tried if len(n.actions) == 1},
                      nodes=record + ([{"restore": restored}] if restored else []))


class RealSearch:
    """One step's best-first search from the real page `root`."""

    def __init__(self, parts: SearchParts, env: BrowserEnv, goal: str, root: Observation, page_text: str,
                 history: Sequence[str], plan: StepPlan, picture: PagePicture | None = None) -> None:
        self.env, self.llm, self.world_model, self.verifier = env, parts.llm, parts.world_model, parts.verifier
        self.config, self.plan = parts.config, plan
        self.goal, self.root, self.page_text, self.picture = goal, root, page_text, picture
        self.history = list(history)
        start_urls = task_start_urls(self.env.task) if self.env.task is not None else []
        self.start_url = start_urls[0] if start_urls else None
        self.resettable = False  # whether the task's state (a local site) was reset for the last fork
        # Why nothing (more) is tried for real this step: the page's origin, or a root that did not reproduce.
        self.not_real = page_reason(self.env, self.root, start_urls, any_origin=False)
        if self.not_real is None and self.start_url is None:
            self.not_real = "the task has no start URL to replay from"
        self.storage: StorageState | None = None
        self.was_reset = False
        self.tried: list[Node] = []

    async def run(self, candidates: Sequence[str]) -> None:
        if self.not_real is None:
            assert self.env.session.context is not None  # page_reason checked it
            self.storage = await self.env.session.context.storage_state()
        for action in candidates:
            if (await self.try_node(None, action)).value >= COMPLETE:
                return
        for _ in range(self.config.tree_expansions):
            growing = [n for n in self.tried if not n.expanded and n.page is not None
                       and len(n.actions) < self.plan.horizon and not _answers(n.actions[-1])]
            if not growing:
                return
            node = max(growing, key=lambda n: n.value)  # the first of equals: the earlier-tried node
            node.expanded, page = True, node.page
            assert page is not None  # `growing` holds real nodes only
            history = [*self.history, *node.actions]
            proposal = await propose_candidates(self.llm, self.goal, page, self.render(page), history,
                                                self.plan.k, self.config.self_refine)
            if proposal.unparseable:
                node.end = "the policy proposed no valid action on its real page"
            for action in proposal.candidates:
                if (await self.try_node(node, action)).value >= COMPLETE:
                    return

    async def try_node(self, parent: Node | None, action: str) -> Node:
        """Try `action` after `parent`'s path for real where that is possible, imagine it otherwise;
        score the trajectory."""
        actions = [*parent.actions, action] if parent else [action]
        before = parent.steps if parent else []
        why = self.not_real or ("it answers the user; there is no page change to try" if _answers(action) else None)
        outcome = why or await self.try_for_real(parent, action)
        if isinstance(outcome, str):
            page = parent.page if parent else self.root
            assert page is not None  # only real nodes grow
            imagined = await self.world_model.imagine(
                self.goal, page, action, 1, history=[*self.history, *actions[:-1]],
                page_text=self.render(page) if parent else self.page_text, picture=None if parent else self.picture)
            node = Node(actions, [*before, *imagined], how=f"imagined: {outcome}")
        else:
            step, page = outcome
            node = Node(actions, [*before, step], how=REAL, replayed=len(self.history) + len(actions) - 1, page=page)
        node.score = await self.verifier.score(self.goal, self.page_text, self.history, actions[0], node.steps,
                                               samples=self.plan.samples, picture=self.picture)
        self.tried.append(node)
        return node

    async def try_for_real(self, parent: Node | None, action: str) -> tuple[ImaginedStep, Observation] | str:
        """Backtrack (reset, fresh fork), replay the prefix, run `action`: its real step and page, or
        why it could not be tried faithfully."""
        fork, writes = await self.fork()
        try:
            page = await self.replay(fork, writes)
            if isinstance(page, str):
                self.not_real = page  # the root does not reproduce: no other node will either
                return page
            for past in parent.actions if parent else []:
                error = await run_in_fork(fork, self.env, page, past)
                page = await observe_fork(fork, self.env, error)
            if parent and parent.page is not None and not same_page(page, parent.page):
                return f"replaying {parent.actions} in a fresh fork does not reproduce the page it reached"
            if writes:
                return f"reproducing the page needs {writes[0]}, which could change server state"
            error = await run_in_fork(fork, self.env, page, action)
            after = await observe_fork(fork, self.env, error)
            if writes:
                return f"it sends {writes[0]}, which could change server state (the fork held it back)"
            return ImaginedStep(action, real_outcome(page, after), note=REAL_NOTE), after
        except PlaywrightError as exc:  # the fork itself broke (crash, timeout loading the page)
            return f"the fork failed: {first_line(exc)}"
        finally:
            await fork.close()

    async def fork(self) -> tuple[ForkSession, list[str]]:
        """A fresh fork on a site reset to pristine (when it can be reset), and the list of requests it
        holds back (when it cannot)."""
        self.resettable = await self.reset_task_state()
        fork, writes = ForkSession(self.env.session), list[str]()
        context = await fork.new_context(storage_state=self.storage,
                                         **({"service_workers": "block"} if self.env.use_guard else {}))
        if self.env.guard is not None:
            await OriginGuard(self.env.guard.policy).install(context)
        if not self.resettable:  # runs before the guard's route
            await context.route("**/*", lambda route: hold_back_writes(route, writes))
        return fork, writes

    async def replay(self, fork: ForkSession, writes: list[str]) -> Observation | str:
        """The fork at the task's start URL with the real history replayed: the page the agent sees, or
        why it is not."""
        assert fork.page is not None and self.start_url is not None
        await fork.page.goto(self.start_url, wait_until="load")
        page = await observe_fork(fork, self.env)
        for past in self.history:  # a past action that failed on the main page fails here too
            error = await run_in_fork(fork, self.env, page, past)
            page = await observe_fork(fork, self.env, error)
        if writes:
            return f"reproducing the page needs {writes[0]}, which could change server state"
        if not same_page(page, self.root):
            how = "resetting the site and replaying" if self.resettable else "replaying"
            return f"a fresh fork does not reproduce the page, not even by {how} the {len(self.history)} real actions"
        return page

    async def reset_task_state(self) -> bool:
        reset = self.env.task is not None and await self.env.task.reset_state()
        self.was_reset |= reset
        return reset

    async def restore(self) -> str | None:
        """Leave a reset site as the real history made it: reset, then replay the history in a fork.
        What was done, and whether it reproduced the page (None when nothing was reset)."""
        if not self.was_reset:
            return None
        if not self.history:
            await self.reset_task_state()
            return "the site was reset to pristine, as the task started"
        fork, writes = await self.fork()
        try:
            page = await self.replay(fork, writes)
        except PlaywrightError as exc:
            page = f"the fork failed: {first_line(exc)}"
        finally:
            await fork.close()
        done = f"the site was reset and the {len(self.history)} real actions replayed"
        return f"{done}; the page matches" if not isinstance(page, str) else f"{done}, but {page}"

    def render(self, page: Observation) -> str:
        return render_text(page, self.config.observation_tokens)


def _answers(action: str) -> bool:
    return parse_action(action).name in ANSWER_ACTIONS
