"""--vision: what a multimodal model is shown beside the page's text, the viewport's screenshot with
set-of-marks (each observed element's id drawn at its box, envs/marks.py), taken once per real page.

The picture is the Env's screenshot, so a field holding a secret is covered in it as in the trace's
steps/NNN.png. The trace records it by file (traces/recorder.py), never inline."""
from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

from envs.marks import draw_marks
from envs.types import Env, Observation, first_line
from world_model.messages import PagePicture, png_data_url

log = logging.getLogger(__name__)


async def page_picture(env: Env, obs: Observation, roles: Iterable[str]) -> PagePicture | None:
    """The current tab's screenshot with `obs`'s elements marked, for the prompts of `roles`; None (with a
    warning) when no picture can be taken, a crashed tab say: the step goes on with the text alone."""
    with tempfile.TemporaryDirectory(prefix="forethought-vision-") as folder:
        path = Path(folder) / "page.png"
        try:
            boxes = await env.screenshot(str(path)) or {}
            png = path.read_bytes()
        except Exception as exc:
            log.warning("no picture of %s for --vision: %s", obs.url, first_line(exc))
            return None
    ids = obs.ids()  # an id left on the page from before is not one the text shows
    marked = await asyncio.to_thread(draw_marks, png, {i: box for i, box in boxes.items() if i in ids})
    return PagePicture(png_data_url(marked), frozenset(roles))
