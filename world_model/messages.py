"""Chat messages as prompts are rendered and sent. A message's content is its text, or, when a picture
of the page goes with it (--vision), a list of OpenAI content parts in order: text parts and
`{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`.

Whatever reads a prompt as text (scripted answers' `when`, token counts, replay's diffs) reads
`content_text`: the text parts joined, pictures left out. A prompt rendered without its picture is the
text-only prompt, character for character.
"""
from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]  # {"role": ..., "content": str | list of parts}
PNG_DATA_URL = "data:image/png;base64,"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class PagePicture:
    """The page's viewport screenshot with set-of-marks, as a PNG data URL, and the roles whose prompts
    carry it; the other roles' prompts hold the text alone."""

    url: str
    roles: frozenset[str]


def shown_to(role: str, picture: PagePicture | None) -> str | None:
    """The picture's data URL when `role` is to see it."""
    return picture.url if picture is not None and role in picture.roles else None


def png_data_url(png: bytes) -> str:
    return PNG_DATA_URL + base64.b64encode(png).decode("ascii")


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def content_text(content: Any) -> str:
    """The text of a message's content: a string as it is, the text parts of a list joined."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return str(content or "")


def map_text(content: Any, change: Callable[[str], str]) -> Any:
    """`content` with `change` applied to its text (each text part of a list), pictures kept."""
    if isinstance(content, list):
        return [{**part, "text": change(str(part.get("text", "")))}
                if isinstance(part, dict) and part.get("type") == "text" else part for part in content]
    return change(str(content or ""))


def image_urls(messages: Iterable[Message]) -> list[str]:
    """The URL of every image part in `messages`, in order."""
    return [str(part["image_url"].get("url", "")) for message in messages
            if isinstance(message.get("content"), list) for part in message["content"]
            if isinstance(part, dict) and part.get("type") == "image_url" and isinstance(part.get("image_url"), dict)]


def png_size(url: str) -> tuple[int, int]:
    """(width, height) of the PNG in a data URL, read from its header; ValueError for anything else."""
    if not url.startswith(PNG_DATA_URL):
        raise ValueError(f"not a PNG data URL: {url[:40]!r}")
    header = base64.b64decode(url[len(PNG_DATA_URL):len(PNG_DATA_URL) + 32])  # signature, IHDR length, type, size
    if len(header) < 24 or not header.startswith(_PNG_SIGNATURE) or header[12:16] != b"IHDR":
        raise ValueError("the data URL holds no PNG header")
    width, height = struct.unpack(">II", header[16:24])
    return width, height
