"""Screenshots that do not show secrets: fields holding a secret value, and text showing one, are
covered while the picture is taken (Playwright's `mask`: an overlay drawn over each element, removed
right after). Field values are read out of the page and compared here, so the page never receives a
secret it was not typed; text is found by Playwright's selector engine, which runs apart from the
page's own scripts."""
from __future__ import annotations

from collections.abc import Iterable

from playwright.async_api import Locator, Page

MASK_COLOR = "#404040"
# Elements whose value or text a user can type into; a password field shows dots but tells the length.
_FIELDS = "input:not([type=hidden]), textarea, [contenteditable]:not([contenteditable=false])"
_FIELD_TEXT = "els => els.map(e => e.isContentEditable ? e.innerText : (e.value ?? ''))"


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
