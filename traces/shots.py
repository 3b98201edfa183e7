"""Screenshots as a report shows them: embedded in the page (a data URI: the report needs no steps/
folder), cropped to where the page has content, and the element an action was aimed at outlined.

The file holds each picture whole, once: the crop is done by CSS (the picture placed in a smaller
frame), so the zoomed view shows the whole picture without a second copy, and a picture identical to
an earlier one of the run (a page that did not change) takes that one's image (a line of script in the
page copies it). A PNG over
EMBED_PNG_BYTES whose JPEG (quality JPEG_QUALITY) is under half its size is embedded as that JPEG
(photos on a page make PNGs large); steps/NNN.png keeps the original either way.
"""
from __future__ import annotations

import base64
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, UnidentifiedImageError

EMBED_PNG_BYTES = 150_000
JPEG_QUALITY = 85
MARGIN = 12  # px of background kept around the content
MIN_CROP = (240, 160)  # a smaller crop is widened to this (around its middle) rather than blown up
FULL_SHARE = 0.8  # content over this share of the picture's area: the picture is shown whole
BACKGROUND_TOLERANCE = 10  # per-channel difference still counted as background (anti-aliasing)

Box = tuple[int, int, int, int]  # x, y, width, height in the picture's pixels


@dataclass(frozen=True)
class Shot:
    src: str  # data URI ("" when it is `same_as`'s)
    width: int
    height: int
    crop: Box  # the part shown in the step's card
    mark: Box | None  # the acted element's box, outlined
    kind: str  # "png" or "jpeg", as embedded
    size: int  # bytes embedded (before base64)
    digest: str = ""  # of the picture's file
    dom_id: str = ""  # the <img>'s id in the page
    same_as: str | None = None  # the id of an earlier <img> holding the identical picture

    def crop_style(self) -> str:
        """CSS for the <img> inside a frame of the crop's aspect ratio: the crop fills the frame."""
        x, y, w, h = self.crop
        return (f"width: {100 * self.width / w:.4f}%; left: {-100 * x / w:.4f}%; top: {-100 * y / h:.4f}%")

    def frame_style(self) -> str:
        x, y, w, h = self.crop
        return f"aspect-ratio: {w} / {h}; max-width: {2 * w}px"  # at most twice the real size

    def mark_style(self, whole: bool = False) -> str:
        """CSS placing the outline over the cropped view (or the whole picture)."""
        if self.mark is None:
            return ""
        x, y, w, h = (0, 0, self.width, self.height) if whole else self.crop
        mx, my, mw, mh = self.mark
        return (f"left: {100 * (mx - x) / w:.4f}%; top: {100 * (my - y) / h:.4f}%; "
                f"width: {100 * mw / w:.4f}%; height: {100 * mh / h:.4f}%")


def load_shot(task_dir: Path, observation: dict[str, Any], acted_id: str | None = None) -> Shot | None:
    """The observation's screenshot ready to embed, with `acted_id`'s box outlined; None when there is no
    picture (not taken, or its file is gone or unreadable)."""
    name = observation.get("screenshot")
    if not name:
        return None
    try:
        data = (task_dir / name).read_bytes()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, UnidentifiedImageError):
        return None
    digest = hashlib.sha256(data).hexdigest()
    rgb = image.convert("RGB")
    box = (observation.get("boxes") or {}).get(acted_id) if acted_id else None
    mark = _clamped((box[0], box[1], box[2], box[3]), rgb.size) if box and len(box) == 4 else None
    kind, data = _embeddable(data, rgb)
    src = f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"
    return Shot(src=src, width=rgb.width, height=rgb.height, crop=content_box(rgb, mark), mark=mark, kind=kind,
                size=len(data), digest=digest)


class ShotLoader:
    """A report's screenshots, each distinct picture embedded once."""

    def __init__(self, task_dir: Path) -> None:
        self.task_dir = task_dir
        self._first: dict[str, str] = {}  # picture digest -> id of the <img> holding it
        self._count = 0

    def load(self, observation: dict[str, Any], acted_id: str | None = None) -> Shot | None:
        shot = load_shot(self.task_dir, observation, acted_id)
        if shot is None:
            return None
        dom_id = f"shot-{self._count}"
        self._count += 1
        first = self._first.setdefault(shot.digest, dom_id)
        if first == dom_id:
            return replace(shot, dom_id=dom_id)
        return replace(shot, dom_id=dom_id, same_as=first, src="")


def content_box(image: Image.Image, keep: Box | None = None) -> Box:
    """The part of `image` that differs from its background (the colour most of its edge has), with
    `keep` inside it; the whole picture when that is most of it."""
    width, height = image.size
    background = _edge_colour(image)
    difference = ImageChops.difference(image, Image.new("RGB", image.size, background)).convert("L")
    found = difference.point(lambda v: 255 if v > BACKGROUND_TOLERANCE else 0).getbbox()
    if found is None:
        return 0, 0, width, height
    left, top, right, bottom = found
    if keep is not None:
        left, top = min(left, keep[0]), min(top, keep[1])
        right, bottom = max(right, keep[0] + keep[2]), max(bottom, keep[1] + keep[3])
    left, top = max(0, left - MARGIN), max(0, top - MARGIN)
    right, bottom = min(width, right + MARGIN), min(height, bottom + MARGIN)
    left, right = _widened(left, right, MIN_CROP[0], width)
    top, bottom = _widened(top, bottom, MIN_CROP[1], height)
    if (right - left) * (bottom - top) > FULL_SHARE * width * height:
        return 0, 0, width, height
    return left, top, right - left, bottom - top


def _edge_colour(image: Image.Image) -> tuple[int, ...]:
    width, height = image.size
    edges = [image.crop(box) for box in ((0, 0, width, 1), (0, height - 1, width, height),
                                         (0, 0, 1, height), (width - 1, 0, width, height))]
    counts: Counter[Any] = Counter()
    for edge in edges:
        for count, colour in edge.getcolors(edge.width * edge.height) or []:
            counts[colour] += count
    return tuple(counts.most_common(1)[0][0])


def _widened(start: int, end: int, least: int, limit: int) -> tuple[int, int]:
    """[start, end) grown around its middle to at least `least`, within [0, limit)."""
    if least >= limit:
        return 0, limit
    if end - start >= least:
        return start, end
    middle = (start + end) // 2
    start = max(0, min(middle - least // 2, limit - least))
    return start, start + least


def _clamped(box: Box, size: tuple[int, int]) -> Box | None:
    """The part of an element's box inside the picture (None when nothing of it is)."""
    x, y, w, h = box
    left, top = max(0, x), max(0, y)
    right, bottom = min(size[0], x + w), min(size[1], y + h)
    return (left, top, right - left, bottom - top) if right > left and bottom > top else None


def _embeddable(data: bytes, image: Image.Image) -> tuple[str, bytes]:
    """The picture's bytes as embedded: the PNG as it is, or a JPEG where that is much smaller."""
    if len(data) <= EMBED_PNG_BYTES:
        return "png", data
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    jpeg = buffer.getvalue()
    return ("jpeg", jpeg) if len(jpeg) < len(data) / 2 else ("png", data)
