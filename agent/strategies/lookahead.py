"""Real lookahead where it is safe (the `lookahead` strategy): the yardstick for how much the world
model loses against reality.

A candidate classified reversible (agent/risk.py) on a page whose origin allows it (file:// pages and
the local sites on 127.0.0.1/localhost; any origin only with `any_origin`) is tried in a FORKED browser
context: a new context on the same browser with the main context's storage state (cookies, local
storage), opened at the same URL. When a fresh load does not reproduce the page the agent sees (the
page's state came from earlier actions: typed text, script state), the task's executed actions are
replayed from its start URL in the fork. The candidate then runs there, and its REAL resulting page is
returned as a one-step ImaginedStep whose prediction describes what really changed, so the verifier,
the risk gate, surprise and reports need no change.

The main page is never touched. The server is shared, so the fork also holds back every request that
could change server state (anything but GET/HEAD/OPTIONS): a candidate that needs one is only imagined,
and so is a page that could only be reproduced with one. Irreversible candidates, answers to the user,
and pages the fork cannot reproduce are imagined by the world model, as in dreamer; why is recorded per
candidate.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import StorageState

from agent.risk import irreversible_reason
from envs.actions import ANSWER_ACTIONS, Action, ActionError, parse_action
from envs.browser import BrowserSession
from envs.env import BrowserEnv
from envs.executor import execute_action
from envs.guard import OriginGuard, browser_url, task_start_urls
from envs.observation import observe
from envs.rendering import element_line
from envs.types import Env, Observation, first_line
from world_model.world_model import ImaginedStep, Prediction

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # requests that do not change server state
REAL = "real"  # how a candidate was looked ahead; otherwise "imagined: <why>"
REAL_NOTE = "real outcome: tried in a forked browser context"
CHANGES_SHOWN = 8  # changed element lines the description names (appear/disappear keep more)
CHANGES_KEPT = 30


def lookahead_allowed(url: str, any_origin: bool = False) -> bool:
    """Whether a page at `url` may be tried for real: file:// and local sites, others only with `any_origin`."""
    if any_origin:
        return True
    parts = urlsplit(url)
    if parts.scheme == "file":
        return True
    return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in LOCAL_HOSTS


@dataclass
class Lookahead:
    real: dict[str, list[ImaginedStep]] = field(default_factory=dict)  # candidate -> its one real step
    how: dict[str, str] = field(default_factory=dict)  # candidate -> "real" or "imagined: <why>"


class ForkSession(BrowserSession):
    """A session on the main session's browser for one forked context. It records no HAR or trace
    (those files belong to the main run), and closing it leaves the shared browser running."""

    def __init__(self, main: BrowserSession) -> None:
        super().__init__(replace(main.config, har_path=None, trace_path=None))
        self._browser = main.browser

    async def close(self) -> None:
        await self.close_context()


async def look_ahead(
    env: Env, obs: Observation, history: Sequence[str], actions: Sequence[str], *, any_origin: bool = False
) -> Lookahead:
    """Try each of `actions` for real in its own fork of the env's page where that is safe; say for
    every action whether it was tried for real or must be imagined, and why."""
    result = Lookahead()
    if not isinstance(env, BrowserEnv):
        result.how = {action: f"imagined: {NO_BROWSER}" for action in actions}
        return result
    start_urls = task_start_urls(env.task) if env.task is not None else []
    page_off = page_reason(env, obs, start_urls, any_origin)
    todo = []
    for action in actions:
        why = page_off or _action_reason(action, obs)
        if why:
            result.how[action] = f"imagined: {why}"
        else:
            todo.append(action)
    if not todo:
        return result
    assert env.session.context is not None  # page_reason checked it
    storage = await env.session.context.storage_state()
    start_url = start_urls[0] if start_urls else None
    outcomes = await asyncio.gather(*(_try_in_fork(env, obs, history, start_url, storage, a) for a in todo))
    for action, outcome in zip(todo, outcomes):
        if isinstance(outcome, ImaginedStep):
            result.real[action] = [outcome]
            result.how[action] = REAL
        else:
            result.how[action] = f"imagined: {outcome}"
    return result


NO_BROWSER = "the env has no browser to fork"


def page_reason(env: BrowserEnv, obs: Observation, start_urls: list[str], any_origin: bool) -> str | None:
    """Why no candidate on this page can be tried for real, or None."""
    if env.session.context is None or env.session.page is None:
        return "no browser context to fork"
    for url in [obs.url, *start_urls]:
        if not lookahead_allowed(url, any_origin):
            return f"real lookahead is off for {url} (only file:// and local sites, unless any origin is allowed)"
    if len(obs.tabs) > 1:
        return "several tabs are open; a fork reproduces only one"
    if len(start_urls) > 1:
        return "the task starts on several pages; a fork reproduces only one"
    return None


def _action_reason(action: str, obs: Observation) -> str | None:
    """Why this candidate must not (or need not) be tried for real, or None."""
    try:
        name = parse_action(action).name
    except ActionError as exc:
        return f"not an action ({exc})"
    if name in ANSWER_ACTIONS:
        return "it answers the user; there is no page change to try"
    why = irreversible_reason(action, obs)
    return f"irreversible ({why})" if why else None


async def _try_in_fork(
    env: BrowserEnv, obs: Observation, history: Sequence[str], start_url: str | None, storage: StorageState,
    action: str,
) -> ImaginedStep | str:
    """The real step of `action` in a fresh fork, or why it could not be tried faithfully."""
    fork = ForkSession(env.session)
    try:
        if env.guard is not None:  # the fork is guarded as the env's own context is
            context = await OriginGuard(env.guard.policy).open_context(fork.new_context, storage_state=storage)
        else:
            context = await fork.new_context(storage_state=storage)
        writes: list[str] = []
        await context.route("**/*", lambda route: hold_back_writes(route, writes))  # runs before the guard's
        before = await _reproduce(fork, env, obs, history, start_url, writes)
        if isinstance(before, str):
            return before
        writes.clear()
        error = await run_in_fork(fork, env, before, action)
        after = await observe_fork(fork, env, error)
        if writes:
            return f"it sends {writes[0]}, which could change server state (the fork held it back)"
        return ImaginedStep(action, real_outcome(before, after), note=REAL_NOTE)
    except PlaywrightError as exc:  # the fork itself broke (crash, timeout loading the page): imagine instead
        return f"the fork failed: {first_line(exc)}"
    finally:
        await fork.close()


async def hold_back_writes(route: Any, writes: list[str]) -> None:
    request = route.request
    if request.method.upper() in SAFE_METHODS:
        await route.fallback()
        return
    writes.append(f"{request.method} {request.url}")
    await route.abort("blockedbyclient")


async def _reproduce(
    fork: ForkSession, env: BrowserEnv, obs: Observation, history: Sequence[str], start_url: str | None,
    writes: list[str],
) -> Observation | str:
    """The fork showing the same page as `obs` (the fork's observation), or why it does not."""
    assert fork.page is not None
    await fork.page.goto(obs.url, wait_until="load")
    fresh = await observe_fork(fork, env)
    if same_page(fresh, obs):
        return fresh
    if not history:
        return "a fresh load in the fork does not show the page the agent sees"
    if start_url is None:
        return "the page depends on earlier actions and the task has no start URL to replay them from"
    await fork.page.goto(start_url, wait_until="load")
    replayed = await observe_fork(fork, env)
    for past in history:
        why = irreversible_reason(past, replayed)
        if why:
            return f"reproducing the page would replay irreversible {past} ({why})"
        # A past action that failed on the main page fails here too.
        error = await run_in_fork(fork, env, replayed, past)
        replayed = await observe_fork(fork, env, error)
    if same_page(replayed, obs):
        return replayed
    if writes:
        return f"reproducing the page needs {writes[0]}, which could change server state"
    return f"the fork does not reproduce the page, not even by replaying the {len(history)} actions so far"


async def run_in_fork(fork: ForkSession, env: BrowserEnv, obs: Observation, action: str) -> str | None:
    """Run `action` in the fork as BrowserEnv.step would; its error, if it failed."""
    try:
        parsed = parse_action(action)
        parsed.check_ids(obs)
        if parsed.name == "goto":  # as BrowserEnv.step checks it
            parsed = Action("goto", (browser_url(parsed.args[0]),))
            if env.guard is not None and not env.guard.navigation_allowed(parsed.args[0]):
                return f"goto: {parsed.args[0]} is outside this task's allowed origins"
        await execute_action(fork, env.secrets.substitute_action(parsed))
    except ActionError as exc:
        return str(exc)
    except (PlaywrightError, LookupError, IndexError) as exc:  # element gone, hidden, timeout; no such tab
        return f"{type(exc).__name__}: {first_line(exc)}"
    return None


async def observe_fork(fork: ForkSession, env: BrowserEnv, error: str | None = None) -> Observation:
    return env.secrets.mask_observation(await observe(fork, env.options, last_action_error=error))


def same_page(a: Observation, b: Observation) -> bool:
    """The same page as the agent reads it: URL, title and every element's id, role, name, value and
    states (scroll position aside)."""
    def key(obs: Observation) -> tuple:
        return obs.url, obs.title, [(e.id, e.role, e.name, e.value, tuple(e.states)) for e in obs.elements]
    return key(a) == key(b)


def real_outcome(before: Observation, after: Observation) -> Prediction:
    """What really happened, as a prediction the verifier reads like an imagined one."""
    old = [element_line(e).strip() for e in before.elements]
    new = [element_line(e).strip() for e in after.elements]
    old_set, new_set = set(old), set(new)
    appear = [line for line in new if line not in old_set]
    disappear = [line for line in old if line not in new_set]
    if after.url != before.url:
        where = f"the page changed to '{after.title}' ({after.url})"
    else:
        where = "the page stayed at the same URL"
    parts = [f"Real outcome (tried in a forked browser): {where}"]
    if appear:
        parts.append(f"appeared: {'; '.join(appear[:CHANGES_SHOWN])}" + (" …" if len(appear) > CHANGES_SHOWN else ""))
    if disappear:
        parts.append(f"disappeared: {'; '.join(disappear[:CHANGES_SHOWN])}"
                     + (" …" if len(disappear) > CHANGES_SHOWN else ""))
    if not appear and not disappear and after.url == before.url:
        parts.append("nothing visible changed")
    if after.last_action_error:
        parts.append(f"the action failed: {after.last_action_error}")
    return Prediction(description="; ".join(parts), url=after.url, appear=appear[:CHANGES_KEPT],
                      disappear=disappear[:CHANGES_KEPT])
