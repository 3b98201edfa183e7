"""How far reality departed from the prediction made for the executed action.

The prediction's checkable claims (its URL, and the elements or texts it expects to appear and to
disappear, values included: `spinbutton 'Quantity' value='2'`) are compared with the real change
between the pages before and after (world_model/page_diff.py):

  precision  claims that came true / claims made
  recall     real changes the prediction named / real changes
  F1         their harmonic mean;  surprise = 1 - F1

Rules that keep the score honest:
- An empty or unparsed answer is no prediction: one claim that did not come true (precision 0,
  F1 0, surprise 1), never a hit.
- The URL: when it changed, it is a real change, named only by predicting the new URL (a missing
  URL prediction is a miss). When it stayed, predicting "same" (or the old URL) is a claim that came
  true, and predicting another URL one that did not; saying nothing about it is neither.
- A failed action is a real change no prediction names, unless the page foretold it (Prediction.known).
- Recall counts changed regions, not elements, and at most RECALL_REGIONS of them: on a page where a
  new view replaced a dozen parts, naming five of them is as much as a short prediction can say.
- When nothing changed and nothing was claimed, the prediction ("no change") was right: F1 1.
  With no claims, F1 is the recall; with no real change, F1 is the precision.
The free-text description is kept for people (and for a later LLM judge) but not scored here.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin

from envs.types import Observation
from world_model.known_outcomes import FAILS
from world_model.page_diff import ElementChange, Region, element_text, page_diff, same_url
from world_model.world_model import Prediction

RECALL_REGIONS = 5
NO_PREDICTION = "a prediction (the answer was empty or could not be parsed)"
_SAME_URL_WORDS = {"same", "unchanged", "no change", "the same", "current", "same url", "stays", "stays the same"}
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’")
# States a claim may name outside quotes ("option 'Sand' selected").
_STATE_WORDS = {"checked", "selected", "expanded", "collapsed", "disabled", "pressed", "focused", "required"}
_VACUOUS = {"", "text", "element", "page", "content"}  # claims that name nothing in particular


@dataclass
class Surprise:
    action: str
    score: float  # 1 - F1: 0 = the predicted changes are the real ones, 1 = none of them
    matched: list[str] = field(default_factory=list)  # claims that came true
    missed: list[str] = field(default_factory=list)  # claims that did not
    expected_url: str = ""  # the URL the prediction named, resolved ("" when it named none)
    actual_url: str = ""
    unnamed: list[str] = field(default_factory=list)  # real changes the prediction did not name
    claims: int = 0
    true_claims: int = 0
    changes: int = 0  # real changes counted for recall (regions, at most RECALL_REGIONS, and the URL)
    named_changes: int = 0
    precision: float | None = None  # None: nothing was claimed
    recall: float | None = None  # None: nothing changed
    f1: float = 0.0
    predicted: bool = True  # False: no prediction (empty or unparsed), scored as the worst

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Tally:
    """Claim and change counts, added over steps: precision, recall and F1 of many predictions."""

    claims: int = 0
    true_claims: int = 0
    changes: int = 0
    named_changes: int = 0

    @classmethod
    def of(cls, surprise: Surprise) -> Tally:
        return cls(surprise.claims, surprise.true_claims, surprise.changes, surprise.named_changes)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.claims + other.claims, self.true_claims + other.true_claims,
                     self.changes + other.changes, self.named_changes + other.named_changes)

    @property
    def precision(self) -> float | None:
        return self.true_claims / self.claims if self.claims else None

    @property
    def recall(self) -> float | None:
        return self.named_changes / self.changes if self.changes else None

    @property
    def f1(self) -> float:
        return f1_score(self.precision, self.recall)


def f1_score(precision: float | None, recall: float | None) -> float:
    """Harmonic mean; a side with nothing to count (None) leaves the other, and both empty is 1."""
    if precision is None or recall is None:
        return next((value for value in (precision, recall) if value is not None), 1.0)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def measure_surprise(action: str, prediction: Prediction, before: Observation, after: Observation) -> Surprise:
    """Compare `prediction` (made on `before` for `action`) with the real next observation `after`."""
    diff = page_diff(before, after)
    matched: list[str] = []
    missed: list[str] = []
    named: set[int] = set()  # indexes of the regions some claim named
    predicted = _is_prediction(prediction)
    if not predicted:
        missed.append(NO_PREDICTION)
    else:
        roles = {e.role.lower() for e in (*before.elements, *after.elements)}  # a bare role names nothing
        for kind, texts in (("appears", prediction.appear), ("disappears", prediction.disappear)):
            for text in _unique(texts):
                region = _named_region(text, kind == "appears", diff.regions, named, roles)
                (matched if region is not None else missed).append(f"{kind}: {text}")
                if region is not None:
                    named.add(region)
    expected_url, url_named = "", False
    url_claim = _url_claim(prediction, before.url) if predicted else None
    if url_claim is not None:
        expected_url, stays = url_claim
        url_named = not stays and same_url(expected_url, after.url)
        came_true = (stays and not diff.url_changed) or url_named
        (matched if came_true else missed).append("url stays" if stays else f"url {expected_url}")

    unnamed = [region.describe() for i, region in enumerate(diff.regions) if i not in named and not region.optional]
    counted = [i for i, region in enumerate(diff.regions) if i in named or not region.optional]
    changes = min(len(counted), RECALL_REGIONS)
    named_changes = min(len(named), changes)
    if diff.url_changed:
        changes += 1
        named_changes += url_named
        if not url_named:
            unnamed.insert(0, f"url {after.url}")
    if diff.action_error:
        changes += 1
        if prediction.known == FAILS:  # foretold from the page (world_model/known_outcomes.py)
            named_changes += 1
            matched.append("the action fails")
        else:
            unnamed.append(f"the action failed: {diff.action_error}")

    tally = Tally(len(matched) + len(missed), len(matched), changes, named_changes)
    f1 = tally.f1
    return Surprise(action, round(1 - f1, 4), matched, missed, expected_url, after.url, unnamed,
                    tally.claims, tally.true_claims, tally.changes, tally.named_changes,
                    _rounded(tally.precision), _rounded(tally.recall), round(f1, 4), predicted)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _is_prediction(prediction: Prediction) -> bool:
    """A parsed answer that says something: plain text (unparsed JSON, repetition) and an empty
    object are no prediction."""
    said = prediction.description.strip() or prediction.url or prediction.appear or prediction.disappear
    return prediction.structured and bool(said)


def _url_claim(prediction: Prediction, before_url: str) -> tuple[str, bool] | None:
    """(the URL predicted, whether that is the page staying), or None when the prediction names none."""
    said = (prediction.url or "").strip()
    if not said:
        return None
    if said.lower() in _SAME_URL_WORDS:
        return before_url, True
    expected = urljoin(before_url, said)
    return expected, same_url(expected, before_url)


def _unique(texts: list[str]) -> list[str]:
    """Claims once each: a model repeating one line makes one claim."""
    seen: dict[str, str] = {}
    for text in texts:
        seen.setdefault(" ".join(text.lower().split()), text)
    return list(seen.values())


def _named_region(claim: str, appears: bool, regions: list[Region], named: set[int],
                  roles: set[str]) -> int | None:
    """The region `claim` came true in (one not yet named by another claim first), or None."""
    whole = " ".join(claim.lower().split())
    if whole in _VACUOUS or whole in roles:
        return None
    pieces = _pieces(claim)
    found = [i for i, region in enumerate(regions)
             if any(_came_true(whole, pieces, appears, change) for change in region.changes)]
    return next((i for i in found if i not in named), found[0] if found else None)


def _pieces(claim: str) -> list[str]:
    """What a claim names: its quoted parts (`button 'Checkout'`, `value='2'`) and state words."""
    quoted = [next(part for part in match.groups() if part) for match in _QUOTED.finditer(claim)]
    states = [word for word in re.findall(r"[a-z]+", _QUOTED.sub(" ", claim).lower()) if word in _STATE_WORDS]
    return [" ".join(part.lower().split()) for part in quoted + states if part.strip()]


def _came_true(whole: str, pieces: list[str], appears: bool, change: ElementChange) -> bool:
    """An appearance claim comes true in an element that appeared (or scrolled into view) showing
    all it names, or in one that changed to show something it names new; a disappearance, the same
    on the element's old side."""
    now, then = (change.after, change.before) if appears else (change.before, change.after)
    if now is None:
        return False
    now_text = element_text(now)
    if not (_contains(now_text, whole) or (pieces and all(_contains(now_text, part) for part in pieces))):
        return False
    if then is None or (now.offscreen != then.offscreen and not now.offscreen):
        return True
    then_text = element_text(then)
    names_something_new = any(not _contains(then_text, part) for part in pieces)
    return names_something_new or (_contains(now_text, whole) and not _contains(then_text, whole))


def _contains(text: str, part: str) -> bool:
    """`part` in `text` as whole words: a claim "A" is not in "Added"."""
    return re.search(rf"(?<!\w){re.escape(part)}(?!\w)", text) is not None
