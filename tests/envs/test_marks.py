"""Set-of-marks on real screenshots: each element's mark is drawn inside that element's box, in the ids
of the text observation, and `forethought observe --screenshot --marks` writes that picture."""
from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageColor

from agent.cli.main import main
from envs.env import BrowserEnv
from envs.marks import MARK_COLORS, draw_marks
from envs.observation import ObservationOptions
from envs.screenshot import element_boxes
from envs.tasks import UrlTask
from tests.pages.page_server import PageServer

PAGE = """<title>Marks</title><style>button { position: absolute; width: 120px; height: 40px; }</style>
<button style="left: 40px; top: 40px">One</button><button style="left: 400px; top: 200px">Two</button>
<button style="left: 800px; top: 500px">Three</button>"""


def pixels_of(picture: Image.Image, color: str, box: list[int]) -> int:
    """How many pixels of `color` the region `box` ([x, y, width, height]) of `picture` holds."""
    x, y, width, height = box
    region = picture.crop((x, y, x + width, y + height)).convert("RGB")
    wanted = ImageColor.getrgb(color)
    return sum(1 for pixel in region.get_flattened_data() if pixel == wanted)


@pytest.fixture
def site() -> Iterator[PageServer]:
    server = PageServer({"/": PAGE})
    yield server
    server.close()


async def test_each_mark_is_drawn_inside_its_elements_box(site: PageServer) -> None:
    async with BrowserEnv(observation=ObservationOptions(screenshot=True)) as env:
        obs, _ = await env.reset(UrlTask(id="marks", start_url=site.url + "/", goal="look"))
        assert env.session.page is not None
        boxes = await element_boxes(env.session.page)
    assert obs.screenshot is not None
    ids = [e.id for e in obs.elements if e.id]
    assert sorted(boxes) == sorted(ids)  # a mark for every element the text observation names, no other
    plain = Image.open(io.BytesIO(obs.screenshot))
    marked = Image.open(io.BytesIO(draw_marks(obs.screenshot, boxes)))
    assert marked.size == plain.size
    for number, element_id in enumerate(boxes):
        color, box = MARK_COLORS[number % len(MARK_COLORS)], boxes[element_id]
        assert pixels_of(plain, color, box) == 0
        assert pixels_of(marked, color, box) > 100, element_id  # its outline and its id's tag
        others = [b for other, b in boxes.items() if other != element_id]
        assert all(pixels_of(marked, color, b) == 0 for b in others)  # not drawn at another element


def test_observe_writes_the_set_of_marks_picture(site: PageServer, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["observe", site.url + "/", "--screenshot", str(tmp_path / "plain.png")]) == 0
    assert main(["observe", site.url + "/", "--screenshot", str(tmp_path / "marks.png"), "--marks"]) == 0
    plain, marked = Image.open(tmp_path / "plain.png"), Image.open(tmp_path / "marks.png")
    assert plain.size == marked.size and plain.tobytes() != marked.tobytes()
    assert main(["observe", "bundled:demo", "--marks"]) == 2
    assert "--marks draws on the screenshot" in capsys.readouterr().err
