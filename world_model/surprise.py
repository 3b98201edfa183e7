"""How far reality departed from the prediction made for the executed action.

Only what a prediction states checkably is compared: the URL, the elements it expected to appear and
to disappear, and that the action ran at all. The free-text description is kept for people (and for
a later LLM judge) but not scored here.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from envs.types import Observation
from world_model.world_model import Prediction

_SAME_URL_WORDS = {"", "same", "unchanged", "no change", "the same", "current", "same url"}
_QUOTED = re.compile(r"""['"“‘](.+?)['"”’]""")


@dataclass
class Surprise:
    action: str
    score: float  # 0 = everything checked came true, 1 = nothing did
    matched: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    expected_url: str = ""
    actual_url: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_surprise(action: str, prediction: Prediction, before: Observation, after: Observation) -> Surprise:
    """Compare `prediction` (made on `before` for `action`) with the real next observation `after`."""
    matched: list[str] = []
    missed: list[str] = []

    def check(ok: bool, what: str) -> None:
        (matched if ok else missed).append(what)

    expected_url = _expected_url(prediction.url, before.url)
    check(_same_url(expected_url, after.url), f"url {expected_url}")
    if after.last_action_error:
        missed.append(f"the action ran (it failed: {after.last_action_error})")
    texts = _element_texts(after)
    for expected in prediction.appear:
        check(_present(expected, texts), f"appears: {expected}")
    for expected in prediction.disappear:
        check(not _present(expected, texts), f"disappears: {expected}")
    score = len(missed) / (len(matched) + len(missed))
    return Surprise(action, round(score, 4), matched, missed, expected_url, after.url)


def _expected_url(predicted: str | None, before_url: str) -> str:
    if predicted is None or predicted.strip().lower() in _SAME_URL_WORDS:
        return before_url
    return urljoin(before_url, predicted.strip())


def _same_url(a: str, b: str) -> bool:
    return _normal_url(a) == _normal_url(b)


def _normal_url(url: str) -> str:
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, parts.fragment))


def _element_texts(obs: Observation) -> list[str]:
    texts = []
    for element in obs.elements:
        texts.append(element.name.lower())
        if element.value:
            texts.append(element.value.lower())
    return texts


def _present(expected: str, texts: list[str]) -> bool:
    """Whether an expected element (written like `button 'Checkout'` or plain text) is on the page."""
    quoted = _QUOTED.search(expected)
    wanted = (quoted.group(1) if quoted else expected).strip().lower()
    return bool(wanted) and any(wanted in text for text in texts)
