"""What the agent sees: the page as a flat element tree with stable ids, and the text an LLM reads.

`observe` runs envs/js/observe.js once per frame (one page.evaluate each), which marks interactive
elements with `data-ft-id` (see envs/ids.py) and returns compact arrays; frames are stitched into the
main frame's list where their <iframe> sits. `render_text` turns an Observation into lines within a
token budget, trimming the least useful lines first and saying what it trimmed.

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
from envs.tokens import count_tokens
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
DEFAULT_TOKEN_BUDGET = 4000


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
    raw = await asyncio.gather(
        _run_script(main, "e"),
        *(_evaluate_child(f, None) for f in children),
    )
    main_data = json.loads(raw[0])
    results: list[_FrameResult] = []
    new_frames: list[Frame] = []
    for frame, text in zip(children, raw[1:]):
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


# ----------------------------------------------------------------------------------------- text

LONG_TEXT_CHARS = 160  # the first trim shortens longer names to this many characters
LONG_SELECT_OPTIONS = 8  # a select with more options than this is long
SELECT_OPTIONS_KEPT = 5  # a long select keeps its first options (and the selected ones)
# What the trimming drops, in this order, and how the closing note names it.
TRIM_KINDS = {
    "texts": "off-screen texts",
    "options": "options of long selects",
    "interactive": "off-screen interactive elements",
    "visible texts": "texts in view",
    "visible interactive": "interactive elements in view",
}


def element_line(element: Element, max_name: int | None = None) -> str:
    """One element as the LLM reads it, e.g. `  [e8] combobox 'Cover' value='Forest green'`."""
    parts = ["  " * element.depth]
    if element.id is not None:
        parts.append(f"[{element.id}] ")
    parts.append(element.role)
    name = _one_line(element.name, max_name)
    if name:
        parts.append(f" '{name}'")
    if element.value:
        parts.append(f" value='{_one_line(element.value, max_name)}'")
    for state in element.states:
        parts.append(f" {state}")
    if element.offscreen:
        parts.append(" (offscreen)")
    return "".join(parts)


def _one_line(text: str, max_chars: int | None) -> str:
    # A textarea's value keeps its newlines; in the rendering they must not start new lines.
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rstrip() + "…"
    return text.replace("\r", "").replace("\n", "\\n")


def _header(obs: Observation) -> list[str]:
    lines = [f"URL: {obs.url}", f"Title: {obs.title}"]
    if len(obs.tabs) > 1:
        tabs = "  ".join(f"{'*' if t.active else ''}[{t.index}] {t.title} ({t.url})" for t in obs.tabs)
        lines.append(f"Tabs: {tabs}")
    if obs.focused_id:
        lines.append(f"Focused: {obs.focused_id}")
    if obs.last_action_error:
        lines.append(f"Last action error: {obs.last_action_error}")
    return lines


def render_text(obs: Observation, token_budget: int | None = None) -> str:
    """The observation as text, one line per element, within `token_budget` tokens (None: the
    default of ObservationOptions). Over budget, the least useful lines go first and a last line
    says what was left out."""
    budget = DEFAULT_TOKEN_BUDGET if token_budget is None else token_budget
    header = _header(obs)
    full = "\n".join(header + [element_line(e) for e in obs.elements])
    # A token is at least one character; and a text ten times longer than the budget is over it in
    # any real page, so the whole text need not be tokenized to know.
    if len(full) <= budget or (len(full) <= 10 * budget and count_tokens(full) <= budget):
        return full
    return _trimmed(obs, header, budget)


def _trimmed(obs: Observation, header: list[str], budget: int) -> str:
    """Keep the most useful lines that fit. The lines that may go are ordered least useful first
    (`_trim_order`); the kept ones are the longest tail of that order that fits, built from the
    tail so that only kept lines are ever tokenized."""
    elements = obs.elements
    n = len(elements)
    parents = _parents(elements)
    has_children = [i + 1 < n and elements[i + 1].depth > elements[i].depth for i in range(n)]
    lines: dict[int, str] = {}
    costs: dict[int, int] = {}

    def cost(i: int) -> int:
        if i not in costs:
            element = elements[i]
            long = len(element.name) > LONG_TEXT_CHARS or len(element.value or "") > LONG_TEXT_CHARS
            lines[i] = element_line(element, LONG_TEXT_CHARS if long else None)
            costs[i] = count_tokens(lines[i] + "\n")
        return costs[i]

    kinds, units = _trim_order(obs, has_children)
    header_cost = count_tokens("\n".join(header) + "\n")
    reserve = 40  # the closing note about what was trimmed (corrected below if longer)
    while True:
        kept = [False] * n
        total = header_cost + reserve

        def add(unit: list[int], force: bool = False) -> bool:
            nonlocal total
            needed = [j for j in unit if not kept[j]]
            # Plain structure (a table row, a heading) above a kept line stays with it.
            for j in unit:
                parent = parents[j]
                while parent >= 0 and not kept[parent] and elements[parent].id is None and parent not in needed:
                    needed.append(parent)
                    parent = parents[parent]
            extra = sum(cost(j) for j in needed)
            if not force and total + extra > budget:
                return False
            for j in needed:
                kept[j] = True
            total += extra
            return True

        focused = next((i for i, e in enumerate(elements) if e.id is not None and e.id == obs.focused_id), None)
        if focused is not None:
            add([focused], force=True)
        forced = sum(kept)
        for unit in reversed(units):
            owner = parents[unit[0]]
            if kinds[unit[0]] == "options" and owner >= 0 and not kept[owner]:
                continue  # an option of a select that is not shown
            if not add(unit):
                break
        dropped = dict.fromkeys(TRIM_KINDS, 0)
        for i in range(n):
            if not kept[i]:
                dropped[kinds[i]] += 1
        shortened = sum(1 for i in range(n) if kept[i] and lines[i] != element_line(elements[i]))
        body = [lines[i] for i in range(n) if kept[i]]
        if not shortened and not any(dropped.values()):
            return "\n".join(header + body)
        text = "\n".join(header + body + [_trim_note(budget, shortened, dropped)])
        excess = count_tokens(text) - budget
        # Per-line counts add up to the whole text's count in practice; if not, aim lower and redo.
        # With nothing left but what is never dropped, this is as short as it gets.
        if excess <= 0 or sum(kept) == forced:
            return text
        reserve += excess + 10


def _trim_order(obs: Observation, has_children: list[bool]) -> tuple[list[str], list[list[int]]]:
    """Each element's trim kind, and the units (lists of element indexes) that may go, least
    useful first: off-screen texts far from the viewport, options of long selects, off-screen
    interactive elements far from the viewport, texts in view, interactive elements in view. A
    select goes with its options; plain structure goes when nothing under it is left; the focused
    element never goes."""
    elements = obs.elements
    distance = _distance_from_viewport(elements)
    extra_options = _extra_options(elements)
    kinds: list[str] = []
    groups: dict[str, list[list[int]]] = {name: [] for name in TRIM_KINDS}
    current_select: list[int] | None = None
    for i, element in enumerate(elements):
        if element.id is None:
            kind = "texts" if element.offscreen else "visible texts"
        elif i in extra_options:
            kind = "options"
        else:
            kind = "interactive" if element.offscreen else "visible interactive"
        kinds.append(kind)
        if element.id is not None and element.id == obs.focused_id:
            current_select = None
            continue
        if element.id is None and has_children[i]:
            continue  # structure: kept along with what is under it
        if element.role == "option" and kind != "options" and current_select is not None:
            current_select.append(i)
            continue
        unit = [i]
        current_select = unit if element.tag == "select" else None
        groups[kind].append(unit)
    groups["texts"].sort(key=lambda unit: -distance[unit[0]])
    groups["interactive"].sort(key=lambda unit: -distance[unit[0]])
    groups["visible texts"].reverse()  # from the bottom of the page up
    groups["visible interactive"].reverse()
    return kinds, [unit for name in TRIM_KINDS for unit in groups[name]]


def _parents(elements: list[Element]) -> list[int]:
    """Index of each element's enclosing element in the tree (-1 at the top)."""
    parents: list[int] = []
    stack: list[int] = []
    for i, element in enumerate(elements):
        while stack and elements[stack[-1]].depth >= element.depth:
            stack.pop()
        parents.append(stack[-1] if stack else -1)
        stack.append(i)
    return parents


def _distance_from_viewport(elements: list[Element]) -> list[int]:
    n = len(elements)
    far = n + 1
    distance = [far] * n
    last = -far
    for i, element in enumerate(elements):
        if not element.offscreen:
            last = i
        distance[i] = i - last
    last = n + far
    for i in range(n - 1, -1, -1):
        if not elements[i].offscreen:
            last = i
        distance[i] = min(distance[i], last - i)
    return distance


def _extra_options(elements: list[Element]) -> set[int]:
    """Options of long selects past the first few, unless selected."""
    extra: set[int] = set()
    i = 0
    while i < len(elements):
        if elements[i].role != "option":
            i += 1
            continue
        run_end = i
        while run_end < len(elements) and elements[run_end].role == "option" and elements[run_end].depth == elements[i].depth:
            run_end += 1
        if run_end - i > LONG_SELECT_OPTIONS:
            extra.update(j for j in range(i + SELECT_OPTIONS_KEPT, run_end) if "selected" not in elements[j].states)
        i = run_end
    return extra


def _trim_note(budget: int, shortened: int, dropped: dict[str, int]) -> str:
    parts = [f"shortened {shortened} long texts"] if shortened else []
    parts += [f"hid {count} {TRIM_KINDS[name]}" for name, count in dropped.items() if count]
    return f"[Trimmed to fit {budget} tokens: {'; '.join(parts)}. Scroll to bring hidden parts into view.]"


# ----------------------------------------------------------------------------------------- html

_DROPPED_TAGS = ["script", "style", "noscript", "template", "meta", "link", "base"]
_KEPT_ATTRIBUTES = {
    ID_ATTRIBUTE, "href", "type", "name", "value", "placeholder", "alt", "title", "role", "aria-label",
    "aria-checked", "aria-selected", "aria-expanded", "aria-disabled", "aria-pressed", "checked",
    "selected", "disabled", "readonly", "required", "multiple", "contenteditable",
}
# Elements that mean something even when empty.
_EMPTY_BUT_KEPT = {"input", "img", "select", "textarea", "button", "iframe", "br", "hr", "option", "a", "canvas", "video"}
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
        if not any(isinstance(child, Tag) or child.strip() for child in tag.contents):
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
