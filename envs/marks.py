"""Set-of-marks: a screenshot with each observed element's id drawn at its box, the ids of the text
observation, so a multimodal model can tie what it sees to what it can act on.

Each element gets an outline and, inside its box at the top left, a label with its id on a filled
tag. Colours cycle so neighbours differ; a tag is clipped to its box when the element is smaller
than the tag. The picture is drawn here, not in the page, so the page never changes for it."""
from __future__ import annotations

import io
from collections.abc import Mapping

from PIL import Image, ImageDraw, ImageFont

MARK_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#800000")
LABEL_SIZE = 12  # px of the id's text
PADDING = 2  # px around the id inside its tag


def draw_marks(png: bytes, boxes: Mapping[str, list[int]]) -> bytes:
    """`png` with an outline and an id tag for each of `boxes` (id -> [x, y, width, height] in its pixels)."""
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=LABEL_SIZE)
    for number, (element_id, (x, y, width, height)) in enumerate(boxes.items()):
        if width <= 0 or height <= 0:
            continue
        color = MARK_COLORS[number % len(MARK_COLORS)]
        right, bottom = x + width - 1, y + height - 1
        draw.rectangle((x, y, right, bottom), outline=color, width=2 if min(width, height) > 8 else 1)
        left, top, text_right, text_bottom = (round(v) for v in draw.textbbox((0, 0), element_id, font=font))
        tag = (x, y, min(x + text_right - left + 2 * PADDING, right), min(y + text_bottom - top + 2 * PADDING, bottom))
        tag_picture = Image.new("RGB", (tag[2] - tag[0] + 1, tag[3] - tag[1] + 1), color)
        ImageDraw.Draw(tag_picture).text((PADDING - left, PADDING - top), element_id, fill="white", font=font)
        picture.paste(tag_picture, (tag[0], tag[1]))  # the text clipped to the tag, the tag to the box
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
