"""A page's picture (--vision) in the prompts: right after the page's text, so inside the start every
prompt of a step shares, and a prompt without one is the text-only prompt, character for character."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from world_model.messages import PagePicture, content_text, png_data_url, png_size, shown_to
from world_model.templates import PromptTemplate, TemplateError, load_template, picture_caption

ROOT = Path(__file__).resolve().parents[2]
STEP_PROMPTS = sorted(p for folder in ("agent", "world_model") for p in (ROOT / folder).rglob("prompts/*.txt"))


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("path", STEP_PROMPTS, ids=lambda p: p.name)
def test_the_picture_follows_the_page_and_leaves_the_text_as_it_was(path: Path) -> None:
    template = load_template(path)
    values = {name: f"<{name}>" for name in template.variables} | {"observation": "[e1] button 'Pay'"}
    url = png_data_url(png(64, 32))
    text_only = template.render(**values)
    seen = template.render(**values, picture=url)
    assert [m["role"] for m in seen] == [m["role"] for m in text_only] == ["system", "user"]
    assert seen[0] == text_only[0]
    first, image, rest = seen[1]["content"]
    assert first["text"].endswith("</page>" + picture_caption())  # the shared start: task, page, picture
    assert image == {"type": "image_url", "image_url": {"url": url}}
    assert text_only[1]["content"] == content_text(seen[1]["content"]).replace(picture_caption(), "", 1)
    assert text_only[1]["content"] == first["text"].removesuffix(picture_caption()) + rest["text"]


def test_a_picture_needs_its_placeholder_and_goes_only_to_the_roles_it_is_for() -> None:
    with pytest.raises(TemplateError, match=r"no \{\{picture\}\} placeholder"):
        PromptTemplate("[user]\n{{goal}}").render(goal="g", picture=png_data_url(png(8, 8)))
    picture = PagePicture(png_data_url(png(8, 8)), frozenset({"policy", "verifier"}))
    assert shown_to("policy", picture) == picture.url and shown_to("world_model", picture) is None
    assert shown_to("policy", None) is None


def test_a_pictures_size_is_read_from_its_png_header() -> None:
    assert png_size(png_data_url(png(1280, 720))) == (1280, 720)
    with pytest.raises(ValueError, match="not a PNG data URL"):
        png_size("data:image/jpeg;base64,/9j/4AAQ")
