"""A Gymnasium-shaped, async browser environment: reset(task) -> (obs, info); step(action) -> 5-tuple."""
from __future__ import annotations

import time
from typing import Any, Iterable

from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from envs.actions import ANSWER_ACTIONS, Action, ActionError, execute_action, parse_action
from envs.browser import BrowserConfig, BrowserSession
from envs.guard import OriginGuard, OriginPolicy
from envs.observation import ObservationOptions, observe
from envs.secrets import Secrets
from envs.types import Observation, Task

ERROR_PAGE_WAIT_MS = 2000


class BrowserEnv:
    """One task at a time in a fresh browser context. A failed action never raises: its error becomes
    `last_action_error` of the next observation.

    Requests outside the task's allowed origins (envs/guard.py; `allow_domains` adds more, `guard=False`
    turns the guard off) are blocked and listed in step info["blocked_urls"]. `secrets` are typed where
    an action names them as {{NAME}} and shown by name in every observation (envs/secrets.py)."""

    def __init__(
        self,
        browser: BrowserConfig | BrowserSession | None = None,
        observation: ObservationOptions | None = None,
        *,
        allow_domains: Iterable[str] = (),
        guard: bool = True,
        secrets: Secrets | None = None,
    ) -> None:
        self.session = browser if isinstance(browser, BrowserSession) else BrowserSession(browser)
        self.options = observation or ObservationOptions()
        self.allow_domains = list(allow_domains)
        self.use_guard = guard
        self.guard: OriginGuard | None = None  # the current task's, set by reset()
        self.secrets = secrets or Secrets()
        self.task: Task | None = None
        self.goal: str = ""
        self.answer: str | None = None
        self.last_observation: Observation | None = None

    async def reset(self, task: Task) -> tuple[Observation, dict[str, Any]]:
        await self.session.start()
        if self.task is not None:
            await self.task.teardown()
        self.task, self.answer = task, None
        # Requests a service worker makes bypass context.route, so a guarded context has none.
        context = await self.session.new_context(**({"service_workers": "block"} if self.use_guard else {}))
        if self.use_guard:
            self.guard = OriginGuard(OriginPolicy.for_task(task, self.allow_domains))
            await self.guard.install(context)
        first_tab = self.session.page
        self.goal = self.secrets.mask(await task.setup(context, first_tab))
        self.session.page = first_tab  # tabs opened during setup must not steal the focus
        obs = await self.observe()
        return obs, {"goal": self.goal, "task_id": task.id}

    async def step(self, action: str | Action) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise RuntimeError("BrowserEnv.step() called before reset()")
        started = time.perf_counter()
        error: str | None = None
        blocked_before = len(self.guard.blocked) if self.guard else 0
        try:
            parsed = parse_action(action) if isinstance(action, str) else action
            if self.last_observation is not None:
                parsed.check_ids(self.last_observation)
            if parsed.name in ANSWER_ACTIONS:
                self.answer = parsed.answer
            await execute_action(self.session, self.secrets.substitute_action(parsed))
        except ActionError as exc:
            error = str(exc)
        except Exception as exc:  # Playwright errors: element gone, hidden, timeout, page crashed
            error = _short_error(exc)
        blocked = self.guard.blocked[blocked_before:] if self.guard else []
        if self.guard and (navigation := self.guard.navigation_error(blocked_before)):
            error = navigation  # Playwright's net::ERR_BLOCKED_BY_CLIENT does not say why
            await self._leave_blocked_page()
        reward, done, info = await self.task.validate(self.session.page, self.answer)
        if self.answer is not None:
            done = True
        obs = await self.observe(last_action_error=error)
        info.update(action_seconds=time.perf_counter() - started, answer=self.answer,
                    blocked_urls=[self.secrets.mask(b.url) for b in blocked])
        return obs, reward, done, False, info

    async def _leave_blocked_page(self) -> None:
        # A blocked link leaves the tab on Chromium's error page: back to where it was, or, for a tab
        # opened only to go there, close it.
        page = self.session.page
        if page is None:
            return
        try:  # Chromium commits its error page a moment after the request is aborted
            await page.wait_for_url(lambda url: url.startswith("chrome-error:"), timeout=ERROR_PAGE_WAIT_MS)
        except PlaywrightTimeoutError:
            return  # the tab stayed where it was
        await page.go_back(wait_until="domcontentloaded")
        if page.url.startswith("chrome-error:") and len(self.session.pages) > 1:
            await self.session.close_tab()

    async def observe(self, last_action_error: str | None = None) -> Observation:
        obs = await observe(self.session, self.options, last_action_error=last_action_error)
        self.last_observation = self.secrets.mask_observation(obs)
        return self.last_observation

    async def close(self) -> None:
        if self.task is not None:
            await self.task.teardown()
            self.task = None
        await self.session.close()

    async def __aenter__(self) -> "BrowserEnv":
        await self.session.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _short_error(exc: Exception) -> str:
    # Playwright messages carry a multi-line call log; the first line says what went wrong.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {first}"
