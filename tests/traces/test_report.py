"""The report as a reader opens it, in real headless Chromium: self-contained (every screenshot still
shows with steps/ deleted), cropped to the page's content with the clicked element outlined, a
full-size view on click, and text that cannot break the layout (a phrase said 100 times, a 400-character
URL, the list of known actions under every unusable answer)."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from agent.cli.main import main
from envs.browser import BrowserConfig, BrowserSession
from traces.schema import read_trace
from traces.shots import EMBED_PNG_BYTES, load_shot

# A MiniWoB++-sized task in the corner of a grey viewport.
TINY_PAGE = """<!doctype html><html><head><title>Tiny task</title><style>
body { margin: 0; background: #555; } #task { width: 200px; height: 160px; background: #fff; font: 12px sans-serif; }
button { margin: 50px 0 0 30px; }
</style></head><body><div id="task"><div id="status">Not pressed.</div>
<button onclick="document.getElementById('status').textContent = 'Pressed!'">Press me</button></div></body></html>
"""
PHRASE = "I will press the button. "
LONG_URL = "https://example.org/" + "a" * 400


def candidates(*actions: tuple[str, str]) -> str:
    return json.dumps({"candidates": [{"action": action, "reason": reason} for action, reason in actions]})


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A real run's report (reactive, scripted model), shown, then moved away from its steps/ folder."""
    root = tmp_path_factory.mktemp("report")
    page = root / "tiny.html"
    page.write_text(TINY_PAGE, encoding="utf-8")
    script = root / "model.json"
    script.write_text(json.dumps({"policy": [
        candidates(("clickk('e1')", "a typo"), ("frobnicate('e1')", "no such action"), ("click('e1')", PHRASE * 100)),
        candidates((f"send_msg_to_user('Pressed, see {LONG_URL}')", "the status says so")),
    ]}), encoding="utf-8")
    out = root / "run"
    assert main(["run", "--url", str(page), "--goal", "Press the button", "--strategy", "reactive",
                 "--model", f"scripted:{script}", "--out", str(out)]) == 0
    assert main(["show", str(out)]) == 0
    trace = read_trace(out / "tiny")
    moved = root / "moved"
    moved.mkdir()
    shutil.move(out / "tiny" / "report.html", moved / "report.html")
    shutil.rmtree(out / "tiny" / "steps")
    return moved / "report.html", trace


@pytest.fixture(scope="module")
async def browser():
    session = BrowserSession(BrowserConfig(viewport_width=1280, viewport_height=900))
    await session.start()
    yield session
    await session.close()


@pytest.fixture
async def page(browser: BrowserSession, report: tuple[Path, Any]):
    await browser.new_context()
    assert browser.page is not None
    await browser.page.goto(report[0].as_uri())
    yield browser.page
    await browser.close_context()


async def test_every_screenshot_is_in_the_file_and_renders_without_the_steps_folder(page, report) -> None:
    images = await page.evaluate("""() => Array.from(document.images).map(
        i => ({src: i.src.slice(0, 22), loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth}))""")
    assert len(images) >= 3  # two steps' pages and the final one (the zoom view's image is empty until used)
    shown = [i for i in images if i["src"]]
    assert all(i["loaded"] for i in shown), images
    assert all(i["src"].startswith("data:image/png;base64") for i in shown)
    assert {i["width"] for i in shown} == {1280}  # the whole picture is in the file, cropped only on screen
    # The last step's page and the final page are the same picture: the file holds it once.
    html = report[0].read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(shown) - 1
    final = page.locator("#final .frame img")
    assert await final.evaluate("img => img.naturalWidth > 0")
    assert "button 'Press me'" in await page.locator("#final pre.tree").inner_text()


async def test_the_picture_is_cropped_to_the_task_and_the_clicked_button_is_outlined(page, report) -> None:
    _path, trace = report
    step = page.locator("section.step").first
    frame = step.locator(".frame")
    box = await frame.evaluate("""frame => {
        const img = frame.querySelector('img').getBoundingClientRect();
        const mark = frame.querySelector('.mark').getBoundingClientRect();
        const shown = frame.getBoundingClientRect();
        const scale = frame.querySelector('img').naturalWidth / img.width;  // screen px -> picture px
        return {mark: [(mark.left - img.left) * scale, (mark.top - img.top) * scale, mark.width * scale,
                       mark.height * scale],
                shownWidth: shown.width * scale, shownHeight: shown.height * scale};
    }""")
    recorded = trace.observations[0]["boxes"]["e1"]  # where the button was on the picture
    assert box["mark"] == pytest.approx(recorded, abs=1.5)
    # Only the task's corner is shown (at most its 200 x 160 px and a margin, widened to 240 px), not
    # the grey 1280 x 720 frame.
    assert box["shownWidth"] <= 260 and box["shownHeight"] <= 200
    assert "(outlined on the screenshot)" in await step.inner_text()
    assert await page.locator("section.step").nth(1).locator(".mark").count() == 0  # an answer aims at nothing


async def test_a_click_shows_the_whole_picture_at_full_size_and_escape_closes_it(page) -> None:
    zoom = page.locator("#zoom")
    assert not await zoom.is_visible()
    await page.locator("section.step .frame").first.click()
    assert await zoom.is_visible()
    size = await zoom.locator("img").evaluate("img => [img.naturalWidth, img.getBoundingClientRect().width]")
    assert size == [1280, 1280]
    assert await zoom.locator(".mark").is_visible()
    await page.keyboard.press("Escape")
    assert not await zoom.is_visible()


async def test_long_and_repeated_text_keeps_the_layout_and_the_full_text_on_hover(page, browser) -> None:
    for width in (1280, 820):
        await page.set_viewport_size({"width": width, "height": 900})
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a {width} px window"
    step = page.locator("section.step").first
    reason = step.locator(".candidates tr.chosen .muted .clip")
    assert (await reason.inner_text()).startswith("I will press the button. [×100]")
    assert (await reason.get_attribute("title") or "").startswith(PHRASE * 3)
    answer = page.locator("#summary dd .clip").first
    assert LONG_URL in (await answer.get_attribute("title") or "")
    assert len(await answer.inner_text()) <= 301


async def test_unusable_answers_are_listed_with_the_known_actions_said_once(page) -> None:
    step = page.locator("section.step").first
    listed = await step.locator("ul.rejected li").all_inner_texts()
    assert [line.split()[0] for line in listed] == ["clickk('e1')", "frobnicate('e1')"]
    assert all("did you mean" in line or "unknown action" in line for line in listed)
    assert (await step.inner_text()).count("Known actions:") == 1


def noisy_png(path: Path) -> Path:
    """A photo-like picture: a PNG of several hundred KB."""
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((360, 640, 3)) * 255).astype("uint8")).filter(ImageFilter.GaussianBlur(2))
    image.save(path, "PNG")
    return path


def test_a_large_photo_like_screenshot_is_embedded_as_a_much_smaller_jpeg(tmp_path: Path) -> None:
    (tmp_path / "steps").mkdir()
    png = noisy_png(tmp_path / "steps" / "000.png")
    assert png.stat().st_size > EMBED_PNG_BYTES
    shot = load_shot(tmp_path, {"screenshot": "steps/000.png"})
    assert shot is not None and shot.kind == "jpeg" and shot.size < png.stat().st_size / 2
    assert Image.open(io.BytesIO(__import__("base64").b64decode(shot.src.split(",", 1)[1]))).size == (640, 360)

    flat = Image.new("RGB", (640, 360), "white")
    flat.save(tmp_path / "steps" / "001.png")
    shot = load_shot(tmp_path, {"screenshot": "steps/001.png"})
    assert shot is not None and shot.kind == "png" and shot.crop == (0, 0, 640, 360)  # nothing to crop to
    assert load_shot(tmp_path, {"screenshot": "steps/002.png"}) is None  # a file that is gone: no picture
