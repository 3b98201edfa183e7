"""Element ids: how an id the agent reads maps back to an element on the page.

The observation script writes `data-ft-id="<id>"` onto every interactive element, keeping an id once
given so ids stay stable across steps. Elements of the main frame get ids `e<N>`; elements inside an
iframe get the frame's prefix, `f<K>e<N>` (the prefix is stored on the frame's window).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: the grammar (envs/actions.py) uses ID_PATTERN without a browser
    from playwright.async_api import Frame, Locator, Page

ID_ATTRIBUTE = "data-ft-id"
ID_PATTERN = re.compile(r"^(?:f\d+)?e\d+$")


def selector_for(element_id: str) -> str:
    return f'[{ID_ATTRIBUTE}="{element_id}"]'


def frame_prefix(element_id: str) -> str:
    """'f2e7' -> 'f2e', 'e7' -> 'e'."""
    return element_id[: element_id.index("e") + 1]


async def locate(page: Page, element_id: str) -> Locator:
    """The locator of an element id, searching the frame that owns its prefix."""
    prefix = frame_prefix(element_id)
    if prefix == "e":
        return page.locator(selector_for(element_id))
    for frame in page.frames[1:]:
        if await _prefix_of(frame) == prefix:
            return frame.locator(selector_for(element_id))
    # Frame gone: a locator that matches nothing yields Playwright's own "not found" error on use.
    return page.locator(selector_for(element_id))


async def _prefix_of(frame: Frame) -> str | None:
    try:
        return await frame.evaluate("() => window.__ftPrefix || null")
    except Exception:  # detached or cross-process frame that is going away
        return None


def closest_ids(wanted: str, known: set[str], count: int) -> list[str]:
    """The `count` known ids nearest to a wrong one, for telling the agent what it may have meant."""
    return sorted(known, key=lambda candidate: _id_distance(wanted, candidate))[:count]


def _id_distance(wanted: str, candidate: str) -> tuple:
    """Typo distance first, then how far apart the numbers are, then the id itself (stable order)."""
    wanted_prefix, wanted_number = _split_id(wanted)
    prefix, number = _split_id(candidate)
    return (_edit_distance(wanted, candidate), prefix != wanted_prefix, abs(number - wanted_number), candidate)


def _split_id(element_id: str) -> tuple[str, int]:
    prefix, _, number = element_id.rpartition("e")
    return prefix, int(number) if number.isdigit() else 0


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]
