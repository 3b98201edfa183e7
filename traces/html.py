"""What the report pages share: the Jinja environment of traces/templates/ and the `clip` filter that
keeps any text a page shows (model output above all) from breaking its layout.

`clip` folds a phrase repeated back to back into one copy and a count ("the button. [×100]"), cuts what
is still longer than its limit, and keeps the text as it was (up to HOVER_CHARS) in a tooltip.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"
HOVER_CHARS = 5_000  # of a clipped text, shown on hover
FOLDED_CHARS = 20_000  # repeats are looked for this far into a text (the search costs time per character)
# A phrase of 4 to 120 characters (starting with a non-space) said 5 times or more in a row.
_REPEATED = re.compile(r"(\S.{3,119}?)(?:\s*\1){4,}", re.DOTALL)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["clip"] = clip
    return env


def fold_repeats(text: str) -> str:
    """`text` with each phrase repeated back to back 5 times or more written once, with its count."""
    head, tail = text[:FOLDED_CHARS], text[FOLDED_CHARS:]
    return _REPEATED.sub(lambda m: f"{m.group(1)} [×{m.group(0).count(m.group(1))}]", head) + tail


def clip(value: Any, limit: int = 300) -> Markup:
    """HTML for `value` as text of at most about `limit` characters; the whole text on hover when cut."""
    text = "" if value is None else str(value)
    shown = fold_repeats(text)
    if shown == text and len(text) <= limit:
        return escape(text)
    cut = len(shown) > limit
    if cut:
        shown = shown[:limit].rstrip() + "…"
    hover = text if len(text) <= HOVER_CHARS else f"{text[:HOVER_CHARS]}… ({len(text) - HOVER_CHARS:,} more characters)"
    more = Markup(' <span class="more">{:,} characters</span>').format(len(text)) if cut else ""
    return Markup('<span class="clip" title="{}">{}</span>{}').format(hover, shown, more)
