"""What an action really changed on a page: the element trees before and after, compared.

Elements are matched by id while the page stays one document (its ids are stable there), else by role
and name; clock times and dates are blanked first, so a ticking timer is no change. An element is
changed when its name, value, states or on-screen place differ.

Changes are grouped into regions: changes next to each other in the tree, and changes inside one
changed element (a select and its options), are one region. A prediction is asked to name regions,
not elements: "the status line now says 'Added 1 × notebook'" names a removed and an added line.
A region where only things scrolled into or out of view is optional: naming it is right, leaving it
out is no miss (most actions do not mean to scroll, and a long status line can push a footer away).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from envs.noise import denoise
from envs.types import Element, Observation

Kind = Literal["appeared", "disappeared", "changed"]


@dataclass(frozen=True)
class ElementChange:
    kind: Kind
    before: Element | None  # None: appeared
    after: Element | None  # None: disappeared
    anchor: int  # where in the after tree (a disappeared element: where it was cut out)

    @property
    def view_only(self) -> bool:
        """Only its place on or off screen changed."""
        return (self.kind == "changed" and self.before is not None and self.after is not None
                and _content(self.before) == _content(self.after))

    def describe(self) -> str:
        if self.kind == "appeared":
            assert self.after is not None
            return f"appeared: {describe_element(self.after)}"
        if self.kind == "disappeared":
            assert self.before is not None
            return f"disappeared: {describe_element(self.before)}"
        assert self.before is not None and self.after is not None
        return f"changed: {describe_element(self.before)} -> {describe_element(self.after)}"


@dataclass
class Region:
    changes: list[ElementChange] = field(default_factory=list)

    @property
    def optional(self) -> bool:
        return all(change.view_only for change in self.changes)

    def describe(self, shown: int = 2) -> str:
        text = "; ".join(change.describe() for change in self.changes[:shown])
        more = len(self.changes) - shown
        return text + (f" (and {more} more changes nearby)" if more > 0 else "")


@dataclass
class PageDiff:
    before_url: str
    after_url: str
    regions: list[Region] = field(default_factory=list)
    action_error: str | None = None

    @property
    def url_changed(self) -> bool:
        return not same_url(self.before_url, self.after_url)


def page_diff(before: Observation, after: Observation) -> PageDiff:
    """The real change from `before` to `after`."""
    one_document = _document(before.url) == _document(after.url)
    old = [_key(e, one_document) for e in before.elements]
    new = [_key(e, one_document) for e in after.elements]
    pairs = _pair(old, new)
    changes = [ElementChange("changed", before.elements[i], after.elements[j], j) for i, j in pairs.items()
               if _detail(before.elements[i]) != _detail(after.elements[j])]
    last_paired = -1  # a removed element was cut out of the after tree just past the last paired one
    for i, element in enumerate(before.elements):
        if i in pairs:
            last_paired = pairs[i]
        else:
            changes.append(ElementChange("disappeared", element, None, last_paired + 1))
    paired_after = set(pairs.values())
    changes += [ElementChange("appeared", None, element, j) for j, element in enumerate(after.elements)
                if j not in paired_after]
    return PageDiff(before.url, after.url, _regions(changes, after.elements), after.last_action_error)


def _pair(old: list[tuple[str, ...]], new: list[tuple[str, ...]]) -> dict[int, int]:
    """Before index -> after index of the same element. The equal start and end of the two trees pair
    in place; in between, the i-th element of a key before pairs with its i-th after. Linear even on a
    page of thousands (aligning the sequences would not be); an element that only moved is no change."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    pairs = {i: i for i in range(start)}
    pairs |= {len(old) - 1 - k: len(new) - 1 - k for k in range(end)}
    waiting: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j in range(start, len(new) - end):
        waiting[new[j]].append(j)
    taken: dict[tuple[str, ...], int] = defaultdict(int)
    for i in range(start, len(old) - end):
        found = waiting[old[i]]
        if taken[old[i]] < len(found):
            pairs[i] = found[taken[old[i]]]
            taken[old[i]] += 1
    return pairs


def _regions(changes: list[ElementChange], after: list[Element]) -> list[Region]:
    """Changes in tree order, grouped: a change joins the region before it when it is next to that
    region's last change, or inside the element the region starts with."""
    subtree_end = _subtree_ends(after)
    regions: list[Region] = []
    root, last = -1, -2
    for change in sorted(changes, key=lambda c: (c.anchor, c.kind != "disappeared")):
        inside_root = change.anchor < subtree_end.get(root, root + 1)
        if regions and (change.anchor <= last + 1 or inside_root):
            regions[-1].changes.append(change)
        else:
            regions.append(Region([change]))
            root = change.anchor if change.after is not None else -1
        last = change.anchor
    return regions


def _subtree_ends(elements: list[Element]) -> dict[int, int]:
    """For each element, the index just past its descendants (the tree is flat, with depths)."""
    ends: dict[int, int] = {}
    open_: list[int] = []
    for index, element in enumerate(elements):
        while open_ and elements[open_[-1]].depth >= element.depth:
            ends[open_.pop()] = index
        open_.append(index)
    for index in open_:
        ends[index] = len(elements)
    return ends


def _key(element: Element, one_document: bool) -> tuple[str, ...]:
    if one_document and element.id is not None:
        return ("id", element.id, element.role)
    return ("node", element.role, denoise(element.name))


def _content(element: Element) -> tuple[str, str, tuple[str, ...]]:
    return denoise(element.name), denoise(element.value or ""), tuple(sorted(element.states))


def _detail(element: Element) -> tuple[tuple[str, str, tuple[str, ...]], bool]:
    return _content(element), element.offscreen


def describe_element(element: Element) -> str:
    """An element as a prediction would name it: role 'name' value='…' states."""
    text = element.role + (f" '{element.name}'" if element.name else "")
    if element.value:
        text += f" value='{element.value}'"
    text += "".join(f" {state}" for state in element.states)
    return text + (" (offscreen)" if element.offscreen else "")


def element_text(element: Element) -> str:
    """What a claim about the element is matched against: role, name, value and states, lowercased."""
    return " ".join(" ".join([element.role, element.name, element.value or "", *element.states]).lower().split())


def _document(url: str) -> str:
    return _normal_url(url).split("#", 1)[0]


def same_url(a: str, b: str) -> bool:
    return _normal_url(a) == _normal_url(b)


def _normal_url(url: str) -> str:
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, parts.fragment))
