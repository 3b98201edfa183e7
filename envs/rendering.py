"""The text an LLM reads of an Observation: one line per element, within a token budget.

Compact on purpose, since a page is paid for in prompt tokens: what is off screen sits under one
marker line per stretch (`--- below the viewport (scroll down to see) ---`) instead of a suffix on
every line; nesting is one space per level; plain text is a bare line; an option of a <select> drops
the role word, and the `selected` its select's value already says; a value equal to the name is
said once. Every interactive element keeps its id and name, and its value and states.

`render_text` trims the least useful lines first and says what it trimmed; `element_lines` are the
page's lines, `element_line` one element's line on its own. Pure formatting: no browser here
(envs/observation.py extracts the Observation).
"""
from __future__ import annotations

import re
from collections.abc import Callable

from envs.tokens import UTF8_MAX_BYTES, clip_to_tokens, count_tokens
from envs.types import Element, Observation

DEFAULT_TOKEN_BUDGET = 4000  # what render_text fits an observation into unless told otherwise
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
# The line that opens each stretch of elements, by where it is: page order tells above from below.
MARKERS = {
    "above": "--- above the viewport (scroll up to see) ---",
    "below": "--- below the viewport (scroll down to see) ---",
    "out of view": "--- out of view (scroll to see) ---",
    "in view": "--- in view ---",
}
# What each header line may take of the page's budget: at most so many tokens, and at most this share of
# the budget. A page chooses its own URL, title and tab titles, and what its dialogs say lands in the
# last action error; none of them may crowd the elements out (together at most 30% of the budget).
HEADER_TOKENS = {"url": (200, 1 / 16), "title": (100, 1 / 32), "tabs": (400, 1 / 10), "error": (600, 1 / 8)}
# Plain text is shown bare unless it could be read as an element, a marker or a header line.
_TEXT_NEEDS_QUOTES = re.compile(r"^(\[|'|---|(URL|Title|Tabs|Focused|Last action error):)")


def element_line(element: Element, max_name: int | None = None) -> str:
    """One element on its own, e.g. ` [e9] option 'Black' selected` or `text 'Saved.'` (in a list of
    what changed, say): its line in the page, with the role words and states its place there implies."""
    return _line(element, max_name, select=None, in_page=False)


def element_lines(elements: list[Element], max_name: int | None = None) -> list[str]:
    """Each element's line as the page's text shows it, e.g. ` [e8] combobox 'Cover' value='Sand'`.
    Plain text is a bare line; an option of a <select> is ` [e9] 'Black'`, without the role word,
    and without `selected` when the select's value is this option's name."""
    selects = _selects(elements, _parents(elements))
    return [_line(e, max_name, select=selects[i], in_page=True) for i, e in enumerate(elements)]


def _line(element: Element, max_name: int | None, select: Element | None, in_page: bool) -> str:
    indent = " " * element.depth
    name = _one_line(element.name, max_name)
    if in_page and element.id is None and element.role == "text" and name and not _TEXT_NEEDS_QUOTES.match(name):
        return indent + name
    parts = [indent]
    if element.id is not None:
        parts.append(f"[{element.id}] ")
    states = element.states
    if select is not None and name:
        if select.value == element.name:
            states = [state for state in states if state != "selected"]
        parts.append(f"'{name}'")
    else:
        parts.append(element.role)
        if name:
            parts.append(f" '{name}'")
    if element.value and element.value != element.name:
        parts.append(f" value='{_one_line(element.value, max_name)}'")
    for state in states:
        parts.append(f" {state}")
    return "".join(parts)


def _selects(elements: list[Element], parents: list[int]) -> list[Element | None]:
    """For each element, the <select> it is an option of (None for anything else)."""
    found: list[Element | None] = []
    for element, parent in zip(elements, parents):
        owner = elements[parent] if parent >= 0 else None
        is_option = owner is not None and element.role == "option" and owner.tag == "select"
        found.append(owner if is_option else None)
    return found


def with_markers(elements: list[Element], kept: list[int], lines: list[str]) -> list[str]:
    """`lines` (those of the elements at indexes `kept`, in order) with a marker line wherever the
    on/off-screen stretch changes. The page's start counts as in view."""
    where = _positions(elements)
    out: list[str] = []
    current = "in view"
    for i, line in zip(kept, lines):
        if where[i] != current:
            current = where[i]
            out.append(MARKERS[current])
        out.append(line)
    return out


def _positions(elements: list[Element]) -> list[str]:
    """Each element's MARKERS key: in view, or off screen above (nothing in view before it), below
    (nothing in view after it) or elsewhere (a scroll box, say)."""
    n = len(elements)
    in_view = [i for i, e in enumerate(elements) if not e.offscreen]
    first, last = (in_view[0], in_view[-1]) if in_view else (n, -1)
    positions = []
    for i, element in enumerate(elements):
        if not element.offscreen:
            positions.append("in view")
        elif i < first and in_view:
            positions.append("above")
        elif i > last and in_view:
            positions.append("below")
        else:
            positions.append("out of view")
    return positions


def _one_line(text: str, max_chars: int | None) -> str:
    # A textarea's value keeps its newlines; in the rendering they must not start new lines.
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rstrip() + "…"
    return text.replace("\r", "").replace("\n", "\\n")


def _header(obs: Observation, budget: int) -> list[str]:
    def within(text: str, part: str) -> str:
        most, share = HEADER_TOKENS[part]
        return clip_to_tokens(text, min(most, max(10, int(budget * share))))

    lines = [f"URL: {within(obs.url, 'url')}", f"Title: {within(obs.title, 'title')}"]
    if len(obs.tabs) > 1:
        tabs = "  ".join(f"{'*' if t.active else ''}[{t.index}] {t.title} ({t.url})" for t in obs.tabs)
        lines.append(f"Tabs: {within(tabs, 'tabs')}")
    if obs.focused_id:
        lines.append(f"Focused: {obs.focused_id}")
    if obs.last_action_error:
        lines.append(f"Last action error: {within(obs.last_action_error, 'error')}")
    return lines


def render_text(obs: Observation, token_budget: int | None = None) -> str:
    """The observation as text, one line per element, within `token_budget` tokens (None: the
    default of ObservationOptions). Over budget, the least useful lines go first and a last line
    says what was left out."""
    budget = DEFAULT_TOKEN_BUDGET if token_budget is None else token_budget
    header = _header(obs, budget)
    elements = obs.elements
    body = with_markers(elements, list(range(len(elements))), element_lines(elements))
    full = "\n".join(header + body)
    # A token is at least one byte (a character at most four); and a text ten times longer than the
    # budget is over it in any real page, so the whole text need not be tokenized to know.
    if len(full) * UTF8_MAX_BYTES <= budget or (len(full) <= 10 * budget and count_tokens(full) <= budget):
        return full
    return _trimmed(obs, header, budget, markers=len(body) - len(elements))


def _trimmed(obs: Observation, header: list[str], budget: int, markers: int) -> str:
    """Keep the most useful lines that fit. The lines that may go are ordered least useful first
    (`_trim_order`); the kept ones are the longest tail of that order that fits, built from the
    tail so that only kept lines are ever tokenized. `markers`: how many marker lines the whole
    text has (the kept lines have at most as many)."""
    elements = obs.elements
    n = len(elements)
    parents = _parents(elements)
    selects = _selects(elements, parents)
    has_children = [i + 1 < n and elements[i + 1].depth > elements[i].depth for i in range(n)]
    lines: dict[int, str] = {}
    costs: dict[int, int] = {}
    shortened_lines: set[int] = set()

    def cost(i: int) -> int:
        if i not in costs:
            element, select = elements[i], selects[i]
            lines[i] = _line(element, None, select, in_page=True)
            if len(element.name) > LONG_TEXT_CHARS or len(element.value or "") > LONG_TEXT_CHARS:
                short = _line(element, LONG_TEXT_CHARS, select, in_page=True)
                if short != lines[i]:
                    lines[i] = short
                    shortened_lines.add(i)
            costs[i] = count_tokens(lines[i] + "\n")
        return costs[i]

    kinds, units = _trim_order(obs, has_children)
    header_cost = count_tokens("\n".join(header) + "\n")
    marker_cost = max(count_tokens(m + "\n") for m in MARKERS.values())
    # The closing note about what was trimmed, and the marker lines (corrected below if longer).
    reserve = 40 + marker_cost * min(markers, 4)
    focused = next((i for i, e in enumerate(elements) if e.id is not None and e.id == obs.focused_id), None)
    # A focused option is shown with its select, which it needs to be read as an option.
    forced: list[int] = []
    if focused is not None:
        forced = [parents[focused], focused] if selects[focused] is not None else [focused]
    while True:
        selection = _Selection(elements, parents, cost, header_cost + reserve)
        kept = selection.kept
        selection.add(forced, budget=None)
        forced_count = sum(kept)
        for unit in reversed(units):
            owner = parents[unit[0]]
            if kinds[unit[0]] == "options" and owner >= 0 and not kept[owner]:
                continue  # an option of a select that is not shown
            if not selection.add(unit, budget):
                break
        dropped = dict.fromkeys(TRIM_KINDS, 0)
        for i in range(n):
            if not kept[i]:
                dropped[kinds[i]] += 1
        shortened = sum(1 for i in shortened_lines if kept[i])
        indexes = [i for i in range(n) if kept[i]]
        body = with_markers(elements, indexes, [lines[i] for i in indexes])
        if not shortened and not any(dropped.values()):
            return "\n".join(header + body)
        text = "\n".join(header + body + [_trim_note(budget, shortened, dropped)])
        excess = count_tokens(text) - budget
        # Per-line counts add up to the whole text's count in practice; if not, aim lower and redo.
        # With nothing left but what is never dropped, this is as short as it gets.
        if excess <= 0 or sum(kept) == forced_count:
            return text
        reserve += excess + 10


class _Selection:
    """The lines one pass of `_trimmed` keeps, and their token total so far."""

    def __init__(self, elements: list[Element], parents: list[int], cost: Callable[[int], int], total: int) -> None:
        self.elements, self.parents, self.cost = elements, parents, cost
        self.kept = [False] * len(elements)
        self.total = total

    def add(self, unit: list[int], budget: int | None) -> bool:
        """Keep `unit` if it fits in `budget` (None: keep it whatever it costs)."""
        kept, parents = self.kept, self.parents
        needed = [j for j in unit if not kept[j]]
        # Plain structure (a table row, a heading) above a kept line stays with it.
        for j in unit:
            parent = parents[j]
            while parent >= 0 and not kept[parent] and self.elements[parent].id is None and parent not in needed:
                needed.append(parent)
                parent = parents[parent]
        extra = sum(self.cost(j) for j in needed)
        if budget is not None and self.total + extra > budget:
            return False
        for j in needed:
            kept[j] = True
        self.total += extra
        return True


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
        depth = elements[i].depth
        while run_end < len(elements) and elements[run_end].role == "option" and elements[run_end].depth == depth:
            run_end += 1
        if run_end - i > LONG_SELECT_OPTIONS:
            extra.update(j for j in range(i + SELECT_OPTIONS_KEPT, run_end) if "selected" not in elements[j].states)
        i = run_end
    return extra


def _trim_note(budget: int, shortened: int, dropped: dict[str, int]) -> str:
    parts = [f"shortened {shortened} long texts"] if shortened else []
    parts += [f"hid {count} {TRIM_KINDS[name]}" for name, count in dropped.items() if count]
    return f"[Trimmed to fit {budget} tokens: {'; '.join(parts)}. Scroll to bring hidden parts into view.]"
