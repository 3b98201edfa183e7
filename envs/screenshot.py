"""Screenshots that do not show secrets: fields holding a secret value, and text showing one, are
covered while the picture is taken (Playwright's `mask`: an overlay drawn over each element, removed
right after). Field values are read out of the page and compared here, so the page never receives a
secret it was not typed; text is found by Playwright's selector engine, which runs apart from the
page's own scripts.

`element_boxes` says where each element with an id is on the picture, so a report can outline the
element an action was aimed at and crop the picture to the page's content."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Locator, Page

from envs.ids import ID_ATTRIBUTE

log = logging.getLogger(__name__)

MASK_COLOR = "#404040"
# Elements whose value or text a user can type into; a password field shows dots but tells the length.
_FIELDS = "input:not([type=hidden]), textarea, [contenteditable]:not([contenteditable=false])"
_FIELD_TEXT = "els => els.map(e => e.isContentEditable ? e.innerText : (e.value ?? ''))"
# [x, y, width, height] in CSS pixels of the frame's viewport, for each element with an id that shows
# at least a pixel inside it (display: none and zero-size elements have no box).
_BOXES = """attribute => {
  const boxes = {};
  for (const el of document.querySelectorAll('[' + attribute + ']')) {
    const r = el.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) continue;
    if (r.right <= 0 || r.bottom <= 0 || r.left >= innerWidth || r.top >= innerHeight) continue;
    boxes[el.getAttribute(attribute)] = [r.left, r.top, r.width, r.height];
  }
  return boxes;
}"""


async def secret_locators(page: Page, values: Iterable[str]) -> list[Locator]:
    """The elements of every frame of `page` whose value or text holds one of `values`."""
    values = [v for v in values if v]
    found: list[Locator] = []
    if not values:
        return found
    for frame in page.frames:
        fields = frame.locator(_FIELDS)
        try:
            texts: list[str] = await fields.evaluate_all(_FIELD_TEXT)
        except Exception:  # a frame detached or navigating meanwhile: its elements are not on the picture
            continue
        found += [fields.nth(n) for n, text in enumerate(texts) if any(v in text for v in values)]
        found += [frame.get_by_text(v) for v in values]
    return found


async def masked_screenshot(page: Page, path: str, secret_values: Iterable[str]) -> None:
    """A PNG of `page` at `path` with every element showing a secret covered."""
    await page.screenshot(path=path, type="png", mask=await secret_locators(page, secret_values),
                          mask_color=MASK_COLOR)


async def element_boxes(page: Page) -> dict[str, list[int]]:
    """Where each element with an id is on a viewport screenshot of `page` now: [x, y, width, height] in
    the picture's pixels (CSS pixels times the device scale), frames' elements placed where their frame
    is. A frame that cannot be read (detached, navigating) adds none."""
    boxes: dict[str, list[int]] = {}
    try:
        scale = await page.evaluate("devicePixelRatio")
    except PlaywrightError as exc:  # navigating away: the picture is taken, where things are is not known
        log.debug("no element boxes: %s", str(exc).splitlines()[0])
        return boxes
    for frame in page.frames:
        try:
            offset = await _frame_offset(frame, page)
            if offset is None:
                continue
            found: dict[str, list[float]] = await frame.evaluate(_BOXES, ID_ATTRIBUTE)
        except PlaywrightError as exc:
            log.debug("no element boxes for frame %s: %s", frame.url, str(exc).splitlines()[0])
            continue
        for element_id, (x, y, width, height) in found.items():
            boxes[element_id] = [round((x + offset[0]) * scale), round((y + offset[1]) * scale),
                                 round(width * scale), round(height * scale)]
    return boxes


async def _frame_offset(frame: Frame, page: Page) -> tuple[float, float] | None:
    """Where a frame's viewport starts in the page's (None: its <iframe> is not on screen)."""
    if frame is page.main_frame:
        return 0.0, 0.0
    handle = await frame.frame_element()
    try:
        box = await handle.bounding_box()  # relative to the main frame's viewport, whatever the nesting
        if box is None:
            return None
        border = await handle.evaluate("e => [e.clientLeft, e.clientTop]")
        return box["x"] + border[0], box["y"] + border[1]
    finally:
        await handle.dispose()
