"""Where the elements are on a screenshot (envs/screenshot.py element_boxes), frames included: the box a
report outlines must sit on the element in the picture. Real headless Chromium, a local page."""
from __future__ import annotations

import pytest

from envs.browser import BrowserSession
from envs.ids import locate
from envs.observation import ObservationOptions, observe
from envs.screenshot import element_boxes

FRAMED = """<!doctype html><html><body style="margin: 0">
<div style="height: 130px"></div>
<button style="margin-left: 210px; width: 90px">Outside</button>
<iframe style="margin: 40px 0 0 70px; border: 5px solid black; width: 400px; height: 200px"
  srcdoc="<body style='margin: 0'><div style='height: 30px'></div>
  <button style='margin-left: 20px'>Inside</button></body>">
</iframe>
<button style="display: none">Hidden</button>
<div style="height: 3000px"></div><button>Far below</button>
</body></html>"""


@pytest.fixture
async def session():
    browser = BrowserSession()
    await browser.start()
    await browser.new_context(device_scale_factor=2)
    yield browser
    await browser.close()


async def test_boxes_are_in_the_pictures_pixels_and_frames_are_placed_where_they_sit(session):
    page = session.page
    await page.set_content(FRAMED)
    await page.frames[1].wait_for_selector("button")
    obs = await observe(session, ObservationOptions())
    ids = {e.name: e.id for e in obs.elements if e.id}
    boxes = await element_boxes(page)

    for name in ("Outside", "Inside"):
        # Playwright's own box, in CSS pixels of the main viewport wherever the element's frame is
        real = await (await locate(page, ids[name])).bounding_box()
        assert boxes[ids[name]] == [round(2 * real[key]) for key in ("x", "y", "width", "height")], name
    assert ids["Far below"] not in boxes  # off screen: not on the picture
    assert "Hidden" not in ids
