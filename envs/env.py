"""A Gymnasium-shaped, async browser environment: reset(task) -> (obs, info); step(action) -> 5-tuple."""
from __future__ import annotations

import time
from typing import Any

from envs.actions import ANSWER_ACTIONS, Action, ActionError, execute_action, parse_action
from envs.browser import BrowserConfig, BrowserSession
from envs.observation import ObservationOptions, observe
from envs.types import Observation, Task


class BrowserEnv:
    """One task at a time in a fresh browser context. A failed action never raises: its error becomes
    `last_action_error` of the next observation."""

    def __init__(
        self,
        browser: BrowserConfig | BrowserSession | None = None,
        observation: ObservationOptions | None = None,
    ) -> None:
        self.session = browser if isinstance(browser, BrowserSession) else BrowserSession(browser)
        self.options = observation or ObservationOptions()
        self.task: Task | None = None
        self.goal: str = ""
        self.answer: str | None = None
        self.last_observation: Observation | None = None

    async def reset(self, task: Task) -> tuple[Observation, dict[str, Any]]:
        await self.session.start()
        if self.task is not None:
            await self.task.teardown()
        self.task, self.answer = task, None
        context = await self.session.new_context()
        first_tab = self.session.page
        self.goal = await task.setup(context, first_tab)
        self.session.page = first_tab  # tabs opened during setup must not steal the focus
        obs = await self.observe()
        return obs, {"goal": self.goal, "task_id": task.id}

    async def step(self, action: str | Action) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise RuntimeError("BrowserEnv.step() called before reset()")
        started = time.perf_counter()
        error: str | None = None
        try:
            parsed = parse_action(action) if isinstance(action, str) else action
            if self.last_observation is not None:
                parsed.check_ids(self.last_observation)
            if parsed.name in ANSWER_ACTIONS:
                self.answer = parsed.answer
            await execute_action(self.session, parsed)
        except ActionError as exc:
            parsed, error = None, str(exc)
        except Exception as exc:  # Playwright errors: element gone, hidden, timeout, page crashed
            error = _short_error(exc)
        reward, done, info = await self.task.validate(self.session.page, self.answer)
        if self.answer is not None:
            done = True
        obs = await self.observe(last_action_error=error)
        info.update(action_seconds=time.perf_counter() - started, answer=self.answer)
        return obs, reward, done, False, info

    async def observe(self, last_action_error: str | None = None) -> Observation:
        self.last_observation = await observe(self.session, self.options, last_action_error=last_action_error)
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
