"""Running actions in the session's active tab (Playwright), and the ways that can fail on the page.

The grammar (parsing, canonical text) is envs/actions.py, which needs no browser.
"""
from __future__ import annotations

import asyncio
import re
import time
import weakref
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from envs.actions import ANSWER_ACTIONS, Action, ActionError, format_action, format_value
from envs.browser import BrowserSession
from envs.ids import locate

# How long to wait for a page a click/press/goto led to; a page that never finishes loading must not
# hang the step (the next observation shows whatever is there).
SETTLE_TIMEOUT_MS = 3000


class ElementGoneError(LookupError):
    """The element was on the page when observed but is no longer there."""


class ActionTimeoutError(PlaywrightTimeoutError):
    """The element never became ready for the action; the message says why (hidden, disabled, …)."""


class PageLoadTimeout(ActionTimeoutError):
    """The page an action led to did not finish loading in time; what had loaded stays in the tab."""


# Actions after which the page may be a new document, or a new tab may have opened.
_MAY_OPEN_TAB = frozenset({"click", "dblclick", "press", "keyboard_press", "fill", "select_option"})
_NAVIGATIONS = frozenset({"goto", "go_back", "go_forward"})
_MAY_NAVIGATE = _MAY_OPEN_TAB | _NAVIGATIONS
# The grammar lets only these through; the table gives Playwright its Literal type.
_MOUSE_BUTTONS: dict[str, Literal["left", "middle", "right"]] = {"left": "left", "middle": "middle", "right": "right"}


async def execute_action(session: BrowserSession, action: Action) -> None:
    """Run one action in the session's active tab. Page failures raise: ElementGoneError, an
    ActionTimeoutError saying why the element never became ready (hidden, disabled, covered), or
    Playwright's own errors. BrowserEnv turns them into `last_action_error`."""
    page = session.page
    if page is None:
        raise RuntimeError("no open tab: call BrowserSession.new_context() first")
    timeout = session.config.action_timeout_ms
    window_opens = await _window_opens(session, page) if action.name in _MAY_OPEN_TAB else []
    try:
        await _perform(session, page, action, timeout)
    except PlaywrightTimeoutError as exc:
        limit = session.config.navigation_timeout_ms if action.name in _NAVIGATIONS else timeout
        if action.name in _NAVIGATIONS or _waits_for_navigation(str(exc)):
            raise await _not_loaded(session, page, action, limit) from exc
        reason = await _timeout_reason(page, action, str(exc))
        raise ActionTimeoutError(f"{format_action(action)} failed after {limit} ms: {reason}") from exc
    if window_opens:
        await _wait_for_new_tab(session, page)
    if action.name in _MAY_NAVIGATE and session.page is not None:
        if not await _settle(session.page, "domcontentloaded"):
            raise await _not_loaded(session, session.page, action, SETTLE_TIMEOUT_MS)
    if action.name in _NAVIGATIONS and session.page is not None and not await _settle(session.page, "load"):
        # The document is there; only some resource (an image, a script) never ends. Leave it be.
        raise PageLoadTimeout(f"{format_action(action)}: the page is shown but did not finish loading within "
                              f"{SETTLE_TIMEOUT_MS} ms (some of its resources are still loading)")


def _waits_for_navigation(message: str) -> bool:
    """Playwright's call log when a click was done and only the page it opened is still coming."""
    lines = [line.strip(" -") for line in message.splitlines()]
    return "waiting for scheduled navigations to finish" in lines[-1:]


async def _not_loaded(session: BrowserSession, page: Page, action: Action, limit: int) -> PageLoadTimeout:
    # A tab waiting for a document answers no script (the next observation would hang): stop it.
    if not page.is_closed():
        await session.stop_loading(page)
    return PageLoadTimeout(f"{format_action(action)}: the page did not finish loading within {limit} ms (its "
                           "server is slow or never finished sending it); loading was stopped and this "
                           "observation shows what had loaded")


async def _perform(session: BrowserSession, page: Page, action: Action, timeout: int) -> None:
    name, args = action.name, action.args
    if name in ("click", "dblclick", "select_option"):
        element = await _element(page, args[0])
        if option := await _option_of_select(element):
            select, value = option
            await select.select_option(value=value, timeout=timeout)
        elif name == "select_option":
            # Playwright matches each string against option values and labels.
            await element.select_option(args[1] if isinstance(args[1], str) else list(args[1]), timeout=timeout)
        else:
            button = _MOUSE_BUTTONS[args[1] if len(args) > 1 else "left"]
            modifiers = list(args[2]) if len(args) > 2 else []
            method = element.click if name == "click" else element.dblclick
            await method(button=button, modifiers=modifiers, timeout=timeout)
    elif name == "fill":
        element = await _element(page, args[0])
        await element.fill(args[1], timeout=timeout)
        if len(args) > 2 and args[2]:
            await element.press("Enter", timeout=timeout)
    elif name == "hover":
        await (await _element(page, args[0])).hover(timeout=timeout)
    elif name == "press":
        await (await _element(page, args[0])).press(args[1], timeout=timeout)
    elif name == "focus":
        await (await _element(page, args[0])).focus(timeout=timeout)
    elif name == "clear":
        await (await _element(page, args[0])).clear(timeout=timeout)
    elif name == "drag_and_drop":
        source = await _element(page, args[0])
        await source.drag_to(await _element(page, args[1]), timeout=timeout)
    elif name == "upload_file":
        await _upload(session, page, args[0], [args[1]] if isinstance(args[1], str) else list(args[1]), timeout)
    elif name == "keyboard_press":
        await page.keyboard.press(args[0])
    elif name == "scroll":
        await _scroll(session, page, args)
    elif name == "goto":
        await page.goto(_absolute_url(page, args[0]), wait_until="domcontentloaded")
    elif name in ("go_back", "go_forward"):
        go = page.go_back if name == "go_back" else page.go_forward
        await go(wait_until="domcontentloaded")
    elif name == "new_tab":
        await session.new_tab()
    elif name == "tab_focus":
        await session.focus_tab(args[0])
    elif name == "tab_close":
        await session.close_tab()
    elif name == "noop":
        await asyncio.sleep((args[0] if args else 1000) / 1000)
    elif name in ANSWER_ACTIONS:
        return  # the answer is read from the action by the caller; the page is untouched
    else:
        raise AssertionError(f"execute_action does not handle {name}")


# Playwright's call log lines that narrate its retries rather than say what is wrong.
_CALL_LOG_NOISE = ("retrying", "waiting", "attempting", "scrolling", "done scrolling", "locator resolved",
                   "element is visible, enabled", "navigated to", "call log")


async def _timeout_reason(page: Page, action: Action, message: str) -> str:
    """The last thing Playwright's call log says was wrong, e.g. 'element is not enabled'."""
    for line in reversed(message.splitlines()[1:]):
        text = re.sub(r"^\s*-\s*(\d+ × )?", "", line).strip()
        echoes_the_call = re.match(r"[a-z_]+\(", text)  # e.g. fill("x")
        if text and not echoes_the_call and not text.lower().startswith(_CALL_LOG_NOISE):
            reason = text
            break
    else:
        return "the element did not become ready"
    if action.name == "select_option" and "did not find some options" in reason:
        try:
            labels = await (await locate(page, action.args[0])).evaluate(
                "s => [...(s.options || [])].map(o => o.label || o.value)", timeout=1000)
        except PlaywrightError:  # the page moved on; the reason without the option list still holds
            return f"no option matches {format_value(action.args[1])}"
        return f"no option matches {format_value(action.args[1])}; the options are: {', '.join(labels)}"
    return reason


# Per page: the URLs it asked to open in a new window (target=_blank, window.open) during the action.
_window_open_log: weakref.WeakKeyDictionary[Page, tuple[Any, list[str]]] = weakref.WeakKeyDictionary()


async def _window_opens(session: BrowserSession, page: Page) -> list[str]:
    """A list that fills as `page` opens windows. Chromium reports the opening (Page.windowOpen)
    before the click returns, while Playwright's new-page event comes tens of ms after it: this lets
    the action wait for the new tab exactly when one is coming, and never otherwise."""
    if page not in _window_open_log:
        assert session.context is not None
        cdp = await session.context.new_cdp_session(page)
        opened: list[str] = []
        cdp.on("Page.windowOpen", lambda event: opened.append(event.get("url", "")))
        await cdp.send("Page.enable")
        _window_open_log[page] = (cdp, opened)
    opened = _window_open_log[page][1]
    opened.clear()
    return opened


async def _wait_for_new_tab(session: BrowserSession, opener: Page) -> None:
    # BrowserSession makes a newly opened tab the active one as soon as Playwright reports it.
    deadline = time.perf_counter() + SETTLE_TIMEOUT_MS / 1000
    while session.page is opener and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


async def _element(page: Page, element_id: str) -> Locator:
    element = await locate(page, element_id)
    # Fail at once (not after the timeout) when the element is gone: waiting will not bring it back.
    if await element.count() == 0:
        raise ElementGoneError(
            f"element {element_id!r} is no longer on the page (removed, or the page changed); "
            "use an id from the current observation"
        )
    return element


async def _option_of_select(element: Locator) -> tuple[Locator, str] | None:
    """(its <select>, its value) when the element is an option of a drop-down list. The observation lists
    the options under their select, so models aim at the one they want (click('e7'), or select_option on
    it with a placeholder value); Chromium does not lay out a closed list's options, so acting on one
    waits for it to become visible and times out. Selecting it in its list is what was meant."""
    try:
        value = await element.evaluate("e => e.tagName === 'OPTION' && e.closest('select') ? e.value : null",
                                       timeout=1000)
    except PlaywrightError:
        return None  # the page moved on: the action fails as it would have
    return (element.locator("xpath=ancestor::select[1]"), value) if isinstance(value, str) else None


async def _upload(session: BrowserSession, page: Page, element_id: str, files: list[str], timeout: int) -> None:
    """Choose `files` in a file input, or in the file chooser that a button or label opens (BrowserGym's
    upload_file takes either)."""
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise ActionError(f"upload_file: there is no file {missing[0]!r}; give the path of an existing file")
    element = await _element(page, element_id)
    if await element.evaluate("e => e instanceof HTMLInputElement && e.type === 'file'"):
        await element.set_input_files(files, timeout=timeout)
        return
    session.choosing_files = True  # the session's own chooser handler stays quiet: this one chooses
    try:
        async with page.expect_file_chooser(timeout=timeout) as chooser:
            await element.click(timeout=timeout)
        await (await chooser.value).set_files(files, timeout=timeout)
    except PlaywrightTimeoutError:
        raise ActionError(f"upload_file: clicking {element_id!r} opened no file chooser; use the id of a file "
                          "input or of the button that opens one") from None
    finally:
        session.choosing_files = False


async def _scroll(session: BrowserSession, page: Page, args: tuple) -> None:
    if isinstance(args[0], str):  # WebArena's scroll [down]: one viewport
        viewport = page.viewport_size or {"width": session.config.viewport_width,
                                          "height": session.config.viewport_height}
        dx, dy = {"down": (0, viewport["height"]), "up": (0, -viewport["height"]),
                  "right": (viewport["width"], 0), "left": (-viewport["width"], 0)}[args[0]]
    else:
        dx, dy = args[0], args[1] if len(args) > 1 else 0
    await page.mouse.wheel(dx, dy)
    # The wheel scroll lands on a later frame; wait two frames so the next observation sees it.
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _absolute_url(page: Page, url: str) -> str:
    if url.startswith(("/", "./", "../", "?", "#")):
        return urljoin(page.url, url)
    return url


async def _settle(page: Page, state: Literal["domcontentloaded", "load"]) -> bool:
    """Wait for the page to reach `state`; False when it is still loading after SETTLE_TIMEOUT_MS."""
    try:
        await page.wait_for_load_state(state, timeout=SETTLE_TIMEOUT_MS)
    except PlaywrightTimeoutError:
        return False
    return True
