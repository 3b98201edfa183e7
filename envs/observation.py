"""What the agent sees: the page as a flat element tree with stable ids, and its pruned HTML.

`observe` runs envs/js/observe.js once per frame (one page.evaluate each), which marks interactive
elements with `data-ft-id` (see envs/ids.py) and returns compact arrays; frames are stitched into the
main frame's list where their <iframe> sits. envs/rendering.py turns an Observation into the text an
LLM reads.

Roles are ARIA's (link, button, textbox, combobox, option, ...) plus `clickable` for elements that
only a click handler or a pointer cursor makes interactive, and, for id-less nodes, `text`,
`heading`, `row` (a table row, cells joined by " | "), `img` and `iframe`. Besides states such as
checked/selected/disabled/expanded/collapsed/pressed/required/readonly, `states` may hold the input
type (`type=date`) and, for a control with no name at all, its HTML id or classes (`#username`,
`.reply`) as the only clue to what it is.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup, Comment, Tag
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Page

from envs.browser import BrowserSession
from envs.ids import ID_ATTRIBUTE
from envs.rendering import DEFAULT_TOKEN_BUDGET
from envs.types import Element, Observation, Tab

log = logging.getLogger(__name__)

OBSERVE_SCRIPT = (Path(__file__).parent / "js" / "observe.js").read_text(encoding="utf-8")
# The script is installed once per document and then called by name: sending and compiling its
# source on every step would cost about a third of a small page's observation.
_CALL_SCRIPT = "args => window.__ftObserve ? window.__ftObserve(args) : null"
_INSTALL_SCRIPT = (
    "args => { Object.defineProperty(window, '__ftObserve', {value: " + OBSERVE_SCRIPT.strip()
    + ", configurable: true}); return window.__ftObserve(args); }"
)


@dataclass
class ObservationOptions:
    token_budget: int = DEFAULT_TOKEN_BUDGET  # budget for render_text; observe() itself keeps everything
    html: bool = False  # also fill Observation.html with pruned HTML
    screenshot: bool = False  # also fill Observation.screenshot (PNG bytes of the viewport)


async def observe(
    session: BrowserSession, options: ObservationOptions, last_action_error: str | None = None
) -> Observation:
    """The active tab as the agent sees it. Marks the page's interactive elements with ids."""
    page = session.page
    if page is None:
        raise RuntimeError("no open page to observe: call BrowserSession.new_context() first")
    elements, title, focused_id = await _extract_with_retry(page)

    async def tab(index: int, tab_page: Page) -> Tab:
        tab_title = title if tab_page is page else await _title(tab_page)
        return Tab(index=index, url=tab_page.url, title=tab_title, active=tab_page is page)

    async def none() -> None:
        return None

    tabs, html, screenshot = await asyncio.gather(
        asyncio.gather(*(tab(i, p) for i, p in enumerate(session.pages))),
        page.content() if options.html else none(),
        page.screenshot(type="png") if options.screenshot else none(),
    )
    return Observation(
        url=page.url,
        title=title,
        tabs=list(tabs),
        elements=elements,
        focused_id=focused_id,
        last_action_error=last_action_error,
        html=prune_html(html) if html is not None else None,
        screenshot=screenshot,
    )


async def _title(page: Page) -> str:
    try:
        return await page.title()
    except PlaywrightError as exc:  # a tab in the middle of navigating has no title yet
        log.debug("no title for tab %s: %s", page.url, exc)
        return ""


async def _extract_with_retry(page: Page) -> tuple[list[Element], str, str | None]:
    # A navigation that lands while the script runs destroys its context; the new page is what
    # the agent should see, so wait for it and read again.
    for attempt in range(3):
        try:
            return await _extract(page)
        except PlaywrightError as exc:
            if attempt == 2 or not _is_navigation_error(exc):
                raise
            log.debug("observation interrupted by navigation, retrying: %s", exc)
            try:
                await page.wait_for_load_state("domcontentloaded")
            except PlaywrightError as wait_error:
                log.debug("waiting for the new page failed: %s", wait_error)
    raise AssertionError("unreachable")


def _is_navigation_error(exc: Exception) -> bool:
    message = str(exc)
    return "Execution context was destroyed" in message or "navigat" in message.lower()


@dataclass
class _FrameResult:
    frame: Frame
    data: dict[str, Any]


async def _extract(page: Page) -> tuple[list[Element], str, str | None]:
    main = page.main_frame
    children = [f for f in page.frames if f is not main and not f.is_detached()]
    main_raw, children_raw = await asyncio.gather(
        _run_script(main, "e"),
        asyncio.gather(*(_evaluate_child(f, None) for f in children)),
    )
    main_data = json.loads(main_raw)
    results: list[_FrameResult] = []
    new_frames: list[Frame] = []
    for frame, text in zip(children, children_raw):
        if text is None:
            continue
        data = json.loads(text)
        if data.get("needsPrefix"):
            new_frames.append(frame)
        else:
            results.append(_FrameResult(frame, data))
    if new_frames:
        # Frame numbers come from one counter on the main window, so a prefix is never reused.
        first = await main.evaluate(
            "n => { const s = window.__ftFrameCounter || 0; window.__ftFrameCounter = s + n; return s + 1; }",
            len(new_frames),
        )
        raw_new = await asyncio.gather(
            *(_evaluate_child(f, f"f{first + i}e") for i, f in enumerate(new_frames))
        )
        results += [_FrameResult(f, json.loads(t)) for f, t in zip(new_frames, raw_new) if t is not None]

    # Which <iframe> placeholder each child frame belongs to: (parent frame, data-ft-frame key).
    by_placeholder: dict[tuple[Frame, str], _FrameResult] = {}
    for result in results:
        key = result.data.get("frameKey") or await _frame_key(result.frame)
        parent = result.frame.parent_frame
        if key is not None and parent is not None:
            by_placeholder[(parent, key)] = result

    elements: list[Element] = []
    focus: list[str | None] = [None]

    def add_frame(frame: Frame, data: dict[str, Any], base_depth: int, offscreen: bool, has_focus: bool) -> None:
        # Every document remembers its own active element; only the one in the focused chain counts.
        if has_focus and data.get("focusedId"):
            focus[0] = data["focusedId"]
        for id_, role, name, depth, value, states, off, tag, frame_key in data["nodes"]:
            element = Element(
                id=id_, role=role, name=name, depth=base_depth + depth, value=value,
                states=states.split() if states else [], offscreen=bool(off) or offscreen, tag=tag,
            )
            elements.append(element)
            child = by_placeholder.get((frame, frame_key)) if frame_key is not None else None
            if child is not None:
                child_focus = has_focus and data.get("focusedFrame") == frame_key
                add_frame(child.frame, child.data, element.depth + 1, element.offscreen, child_focus)

    add_frame(main, main_data, 0, False, True)
    return elements, main_data["title"], focus[0]


async def _run_script(frame: Frame, prefix: str | None) -> str:
    result = await frame.evaluate(_CALL_SCRIPT, {"prefix": prefix})
    if result is None:
        result = await frame.evaluate(_INSTALL_SCRIPT, {"prefix": prefix})
    return result


async def _evaluate_child(frame: Frame, prefix: str | None) -> str | None:
    try:
        return await _run_script(frame, prefix)
    except PlaywrightError as exc:  # detached or navigating away: it is not part of this page now
        log.warning("skipped frame %s: %s", frame.url, str(exc).splitlines()[0])
        return None


async def _frame_key(frame: Frame) -> str | None:
    """The data-ft-frame key of a frame's <iframe> (cross-origin frames cannot read it themselves)."""
    try:
        handle = await frame.frame_element()
        try:
            return await handle.get_attribute("data-ft-frame")
        finally:
            await handle.dispose()
    except PlaywrightError as exc:
        log.warning("could not place frame %s: %s", frame.url, str(exc).splitlines()[0])
        return None


# ----------------------------------------------------------------------------------------- html

_DROPPED_TAGS = ["script", "style", "noscript", "template", "meta", "link", "base"]
_KEPT_ATTRIBUTES = {
    ID_ATTRIBUTE, "href", "type", "name", "value", "placeholder", "alt", "title", "role", "aria-label",
    "aria-checked", "aria-selected", "aria-expanded", "aria-disabled", "aria-pressed", "checked",
    "selected", "disabled", "readonly", "required", "multiple", "contenteditable",
}
# Elements that mean something even when empty.
_EMPTY_BUT_KEPT = {
    "input", "img", "select", "textarea", "button", "iframe", "br", "hr", "option", "a", "canvas", "video",
}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def prune_html(html: str) -> str:
    """HTML without what an LLM does not need: scripts, styles, comments, hidden elements, svg
    drawing, and all attributes but a few meaningful ones (data-ft-id stays, so ids can be read
    off it). Hidden means hidden by markup (hidden, aria-hidden, inline style, type=hidden)."""
    soup = BeautifulSoup(html, "lxml")
    for comment in soup.find_all(string=lambda text: isinstance(text, Comment)):
        comment.extract()
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    for tag in soup.find_all(_is_hidden_by_markup):
        tag.decompose()
    for svg in soup.find_all("svg"):
        for child in [c for c in svg.children if not (isinstance(c, Tag) and c.name == "title")]:
            child.extract()
    for tag in soup.find_all(True):
        tag.attrs = {k: v for k, v in tag.attrs.items() if k in _KEPT_ATTRIBUTES}
    for text in soup.find_all(string=True):
        collapsed = re.sub(r"\s+", " ", text)
        if collapsed != text:
            text.replace_with(collapsed)
    # Children come before their parents in reversed document order, so emptiness cascades upward.
    for tag in reversed(soup.find_all(True)):
        if tag.name in _EMPTY_BUT_KEPT or tag.attrs:
            continue
        if not any(isinstance(child, Tag) or str(child).strip() for child in tag.contents):
            tag.decompose()
    return str(soup).strip()


def _is_hidden_by_markup(tag: Tag) -> bool:
    attrs = tag.attrs
    return (
        "hidden" in attrs
        or attrs.get("aria-hidden") == "true"
        or (tag.name == "input" and str(attrs.get("type", "")).lower() == "hidden")
        or bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))
    )
