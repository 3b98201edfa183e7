"""What changes on a page by itself (clocks, dates, countdowns): blanked before two states are compared,
so a ticking timer is not a change (trace fingerprints, and the world model's page diff)."""
from __future__ import annotations

import re

_NOISE = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp]\.?[Mm]\.?)?\b"), "<time>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|secs?|seconds?|mins?|minutes?|hrs?|hours?)\b(?:\s(?:ago|left|remaining))?",
                re.IGNORECASE), "<duration>"),
]


def denoise(text: str) -> str:
    """`text` with clock times, dates and durations blanked and whitespace collapsed."""
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())
