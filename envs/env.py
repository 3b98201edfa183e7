"""A Gymnasium-shaped, async browser environment: reset(task) -> (obs, info); step(action) -> 5-tuple."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError

from envs.actions import ANSWER_ACTIONS, Action, ActionError, parse_action
from envs.browser import BrowserConfig, BrowserCrashed, BrowserSession
from envs.executor import execute_action
from envs.guard import OriginGuard, OriginPolicy, browser_url
from envs.observation import ObservationOptions, observe
from envs.screenshot import element_boxes, masked_screenshot
from envs.secrets import Secrets
from envs.types import Observation, Task, first_line

ERROR_PAGE_WAIT_S = 2.0


class StartPageError(RuntimeError):
    """reset() could not open or observe the task's start page (unreachable, refused, crashed): the
    task cannot begin. Failures after it become observations, or the run's own error."""

    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__(f"could not open the start page of task {task_id}: {reason}")
        self.reason = reason


class BrowserEnv:
    """One task at a time in a fresh browser context. A failed action never raises: its error becomes
    `last_action_error` of the next observation.

    Requests outside the task's allowed origins (envs/guard.py; `allow_domains` adds more, `allow_files`
    adds local files and folders besides a file task's own folder, `guard=False` turns the guard off) are
    blocked and listed in step info["blocked_urls"] (all since the last step returned, so one that lands
    late is not lost; a blocked redirect hop as "URL (redirected from URL)"). `secrets` are typed where
    an action names them as {{NAME}} and shown by name in every observation (envs/secrets.py).

    What a page does on its own (dialogs, downloads, file choosers; envs/browser.py) is listed in
    info["page_events"] and told to the agent in `last_action_error` (info["action_error"] is the
    action's own error alone). `upload_file` may only send files under `upload_dirs` (none by default).
    If the browser dies, the next step or observe() starts a new one at the last URL and says so in
    `last_action_error`; when it cannot start, BrowserCrashed is raised."""

    def __init__(
        self,
        browser: BrowserConfig | BrowserSession | None = None,
        observation: ObservationOptions | None = None,
        *,
        allow_domains: Iterable[str] = (),
        allow_files: Iterable[str | Path] = (),
        guard: bool = True,
        secrets: Secrets | None = None,
        upload_dirs: Iterable[str | Path] = (),
    ) -> None:
        self.session = browser if isinstance(browser, BrowserSession) else BrowserSession(browser)
        self.options = observation or ObservationOptions()
        self.allow_domains = list(allow_domains)
        self.allow_files = list(allow_files)
        self.use_guard = guard
        self.guard: OriginGuard | None = None  # the current task's, set by reset()
        self.secrets = secrets or Secrets()
        self.upload_dirs = [Path(d).resolve() for d in upload_dirs]
        self.task: Task | None = None
        self.goal: str = ""
        self.answer: str | None = None
        self.last_observation: Observation | None = None
        self._events_reported = 0  # session.events already reported by reset or a step
        self._blocked_reported = 0  # guard.blocked already reported by a step

    async def reset(self, task: Task) -> tuple[Observation, dict[str, Any]]:
        await self.session.start()
        if not self.session.connected:  # it died after the last task: the next one gets a new browser
            await self.session.relaunch()
        if self.task is not None:
            await self.task.teardown()
        self.task, self.answer = task, None
        events_before = len(self.session.events)
        policy = OriginPolicy.for_task(task, self.allow_domains, self.allow_files) if self.use_guard else None
        self.guard = OriginGuard(policy) if policy is not None else None
        context = await self._open_context()
        first_tab = self.session.page
        try:
            self.goal = self.secrets.mask(await task.setup(context, first_tab))
            self.session.page = first_tab  # tabs opened during setup must not steal the focus
            obs = await self.observe()
        except PlaywrightError as exc:
            raise StartPageError(task.id, first_line(exc)) from exc
        page_events = self._page_events(events_before)
        self._events_reported = events_before + len(page_events)
        self._blocked_reported = len(self.guard.blocked) if self.guard else 0  # the page's own, not a step's
        return obs, {"goal": self.goal, "task_id": task.id, "page_events": page_events}

    async def _open_context(self) -> Any:
        if self.guard is None:
            return await self.session.new_context()
        if self.session.config.use_open_tab:  # the user's own context: no proxy of ours can be set on it
            context = await self.session.new_context()
            await self.guard.install(context)
            return context
        return await self.guard.open_context(self.session.new_context)

    async def step(self, action: str | Action) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise RuntimeError("BrowserEnv.step() called before reset()")
        started = time.perf_counter()
        error: str | None = None
        # A block or a download can reach us after its step returned: it is then reported with the next step.
        blocked_before = self._blocked_reported
        events_before = self._events_reported
        left_the_page = True  # whether a blocked navigation may have left the tab on Chromium's error page
        try:
            parsed = parse_action(action) if isinstance(action, str) else action
            if parsed.name == "goto":  # the guard checks, and the browser opens, the same URL
                parsed = Action("goto", (browser_url(parsed.args[0]),))
            if self.last_observation is not None:
                parsed.check_ids(self.last_observation)
            if parsed.name in ANSWER_ACTIONS:
                self.answer = parsed.answer
            if parsed.name == "upload_file":
                self._check_upload(parsed.args[1])
            if parsed.name == "goto" and self.guard and not self.guard.check_navigation(parsed.args[0]):
                left_the_page = False  # refused before it ran; navigation_error below says why
            else:
                await execute_action(self.session, self.secrets.substitute_action(parsed))
        except ActionError as exc:
            error = str(exc)
        except Exception as exc:  # Playwright errors: element gone, hidden, timeout, page crashed
            error = _short_error(exc)
            if await self._browser_died(exc):
                error = await self._restart_browser(f"{str(action).strip()} may not have run")
        obs = await self.observe(last_action_error=error)
        # Checked after observing: a link followed a moment after the action returned is blocked by then.
        if self.guard and (navigation := self.guard.navigation_error(blocked_before)):
            error = navigation  # Playwright's net::ERR_BLOCKED_BY_CLIENT does not say why
            if left_the_page:
                await self._leave_blocked_page()
            obs = await self.observe(last_action_error=error)
        reward, done, info = await self.task.validate(self.session.page, self.answer)
        if self.answer is not None:
            done = True
        blocked = self.guard.blocked[blocked_before:] if self.guard else []
        self._blocked_reported = blocked_before + len(blocked)
        # Taken after the observation: a file chooser or download reaches us a moment after the click
        # returns, and the observation's round trips to the page let it in.
        page_events = self._page_events(events_before)
        if page_events:
            notes = _with_notes(obs.last_action_error, [e["note"] for e in page_events])
            obs = self.last_observation = replace(obs, last_action_error=notes)
        self._events_reported = events_before + len(page_events)
        info.update(action_seconds=time.perf_counter() - started, answer=self.answer, action_error=error,
                    blocked_urls=[self.secrets.mask(b.describe()) for b in blocked], page_events=page_events)
        return obs, reward, done, False, info

    def _check_upload(self, files: str | list[str]) -> None:
        # A page could talk the agent into uploading any file it can read: only the user's folders.
        for file in [files] if isinstance(files, str) else files:
            path = Path(file).resolve()
            if not any(path.is_relative_to(folder) for folder in self.upload_dirs):
                allowed = ", ".join(map(str, self.upload_dirs)) or "none"
                raise ActionError(f"upload_file: {file} is outside the folders uploads may come from "
                                  f"({allowed}; the user allows one with --upload-dir DIR)")

    def _page_events(self, since: int) -> list[dict[str, Any]]:
        """What pages did on their own since event `since`, secrets masked (envs/browser.py PageEvent)."""
        return [{"kind": e.kind, "note": self.secrets.mask(e.note),
                 "details": {k: self.secrets.mask(v) for k, v in e.details.items()}}
                for e in self.session.events[since:]]

    async def _browser_died(self, exc: Exception | None = None) -> bool:
        if not self.session.connected:
            return True
        # TargetClosedError (not exported): a tab, context or browser is gone. No active tab left: all
        # closed, as they do when the browser dies. A tab can also close on its own: ask the browser.
        if "has been closed" not in str(exc) and self.session.page is not None:
            return False
        return not await self.session.alive()

    async def _restart_browser(self, what_happened: str = "") -> str:
        """A new browser, context and guard at the URL the agent last saw; the text that tells the agent.
        Raises BrowserCrashed when the browser cannot start again."""
        if self.last_observation is not None:
            url = self.last_observation.url
        else:
            url = self.session.page.url if self.session.page is not None else "about:blank"
        await self.session.relaunch()
        try:
            await self._open_context()
        except PlaywrightError as exc:
            raise BrowserCrashed(f"the browser crashed and the new one could not open a page: {exc}") from exc
        assert self.session.page is not None
        parts = [f"the browser crashed and was restarted at {url}"]
        try:
            await self.session.page.goto(url, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            parts.append(f"reopening {url} failed ({_short_error(exc)})")
        if what_happened:
            parts.append(what_happened)
        return "; ".join(parts) + ". Cookies, logins and other tabs of the old browser are lost"

    async def _leave_blocked_page(self) -> None:
        # A blocked link leaves the tab on Chromium's error page: back to where it was, or, for a tab
        # opened only to go there, close it.
        page = self.session.page
        if page is None:
            return
        # Chromium commits its error page a moment after the request is aborted. Polled: wait_for_url
        # raises the aborted navigation's own error when it catches that instead.
        deadline = time.perf_counter() + ERROR_PAGE_WAIT_S
        while not page.url.startswith("chrome-error:"):
            if time.perf_counter() > deadline or page.is_closed():
                return  # the tab stayed where it was
            await asyncio.sleep(0.02)
        await page.go_back(wait_until="domcontentloaded")
        if page.url.startswith("chrome-error:") and len(self.session.pages) > 1:
            await self.session.close_tab()

    async def observe(self, last_action_error: str | None = None) -> Observation:
        if self.task is not None and self.session.page is None and not await self._browser_died():
            await self.session.new_tab()
            last_action_error = _with_notes(last_action_error, ["the page closed its last tab; a blank tab was opened"])
        if self.task is not None and not self.session.connected:  # died since the last step
            last_action_error = await self._restarted(last_action_error)
        try:
            obs = await observe(self.session, self.options, last_action_error=last_action_error)
        except PlaywrightError as exc:  # died while being observed, or before Playwright noticed
            if self.task is None or not await self._browser_died(exc):
                raise
            last_action_error = await self._restarted(last_action_error)
            obs = await observe(self.session, self.options, last_action_error=last_action_error)
        self.last_observation = self.secrets.mask_observation(obs)
        return self.last_observation

    async def _restarted(self, error: str | None) -> str | None:
        return _with_notes(await self._restart_browser(), [error] if error else [])

    def secret_values(self) -> list[str]:
        return list(self.secrets.values.values())

    def blocked_urls(self) -> list[str]:
        return [blocked.describe() for blocked in self.guard.blocked] if self.guard else []

    async def screenshot(self, path: str) -> dict[str, list[int]]:
        page = self.session.page
        if page is None:
            raise RuntimeError("no tab is open")
        await masked_screenshot(page, path, self.secrets.values.values())  # secrets covered
        return await element_boxes(page)

    async def finish_recordings(self) -> list[str]:
        config = self.session.config
        written = [p for p in (config.trace_path, config.har_path) if p]
        if written:
            await self.session.close_context()
        return written

    async def close(self) -> None:
        if self.task is not None:
            await self.task.teardown()
            self.task = None
        await self.session.close()

    async def __aenter__(self) -> BrowserEnv:
        await self.session.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _with_notes(error: str | None, notes: list[str]) -> str | None:
    """The action's error followed by what the page did on its own (a dialog it answered, a download);
    a note said again and again (an alert on a timer) is said once, with how often."""
    said = [note if times == 1 else f"{note} ({times} times)" for note, times in Counter(notes).items()]
    return " | ".join(part for part in (error, *said) if part) or None


def _short_error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"


