"""Scoring an imagined trajectory against the task, WebDreamer's way: complete 1.0 / on track 0.5 /
wrong 0, averaged over m samples. Where the endpoint gives token logprobs, a sample's value is the
expected one under the model's own odds for the three verdicts (0.55 complete, 0.45 on track: 0.775),
so one sample already says how sure the verifier is, and an overrule margin compares sureness rather
than two coin flips. An outcome the page itself told (the action fails, or changes nothing:
world_model/known_outcomes.py) scores 0 without asking. An action that ends the task (an answer, or
reporting it infeasible) scores 1 when complete and 0 otherwise: nothing can follow it, so "on track"
after it is a failure. Structured output where the endpoint supports it; otherwise the verdict is read
from plain text."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.llm.protocol import LLM
from envs.actions import ANSWER_ACTIONS, ActionError, parse_action
from envs.tokens import clip_to_tokens
from world_model.messages import PagePicture, shown_to
from world_model.templates import PART_TOKENS, load_template
from world_model.world_model import ImaginedStep, describe, format_history

PROMPTS = Path(__file__).parent / "prompts"
VERDICT_VALUES = {"complete": 1.0, "on track": 0.5, "wrong": 0.0}
_VERDICT_ALIASES = {"completed": "complete", "on-track": "on track", "ontrack": "on track",
                    "incorrect": "wrong", "off track": "wrong"}
_VERDICT_IN_TEXT = re.compile(r"\b(complete|completed|on[ -]?track|incorrect|wrong|off track)\b", re.IGNORECASE)

VERDICT_SCHEMA: dict[str, Any] = {
    "title": "verdict",
    "type": "object",
    "properties": {"reason": {"type": "string", "maxLength": 160},  # bounds the tokens a CPU decodes
                   "verdict": {"type": "string", "enum": list(VERDICT_VALUES)}},
    "required": ["reason", "verdict"],
    "additionalProperties": False,
}


@dataclass
class Score:
    value: float  # mean over the samples the verifier answered readably (0 when none did)
    samples: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    unreadable: int = 0  # samples with no verdict in them
    weighed: int = 0  # samples valued by the verdicts' odds (token logprobs) rather than the verdict drawn
    known: str | None = None  # "fails" / "no change": scored 0 from the page's own facts, no verifier asked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Verifier(Protocol):
    async def score(
        self, goal: str, page_text: str, history: Sequence[str], action: str,
        imagined: Sequence[ImaginedStep] | None, *, samples: int | None = None, picture: PagePicture | None = None,
    ) -> Score: ...


class LLMVerifier:
    """Asks the `verifier` role for `samples` verdicts in one call (n = samples)."""

    def __init__(self, llm: LLM, samples: int = 3) -> None:
        self.llm = llm
        self.samples = samples
        self.prompt = load_template(PROMPTS / "verify.txt")

    async def score(
        self,
        goal: str,
        page_text: str,
        history: Sequence[str],
        action: str,
        imagined: Sequence[ImaginedStep] | None = None,
        *,
        samples: int | None = None,
        picture: PagePicture | None = None,
    ) -> Score:
        """Score `action`: with its imagined trajectory (dreamer), or on the action alone (rerank).
        `samples` overrides the verifier's m for this call (adaptive sets it per step). The score's
        `reasons` are the verifier's critiques (revise shows them to the policy). With `picture` (for the
        verifier), the predicted change is judged against the page's screenshot too."""
        if imagined and imagined[0].prediction.known:  # a fact, not a guess: never progress, nothing to ask
            return Score(value=0.0, reasons=[imagined[0].prediction.description], known=imagined[0].prediction.known)
        messages = self.prompt.render(
            goal=goal, history=format_history(history), observation=page_text,
            trajectory=_trajectory_text(action, imagined, page_text), picture=shown_to("verifier", picture),
        )
        answers = await self.llm.complete("verifier", messages, n=samples or self.samples, json_schema=VERDICT_SCHEMA)
        score = Score(value=0.0)
        ends_task = _ends_task(action)
        for answer in answers:
            value, reason = read_verdict(answer.text, answer.data)
            if value is None:
                score.unreadable += 1
                continue
            odds = (answer.choice_probs or {}).get("verdict")
            if odds:
                value = expected_value(odds, ends_task)
                score.weighed += 1
            elif ends_task and value < VERDICT_VALUES["complete"]:
                value = VERDICT_VALUES["wrong"]  # an answer cannot be "on track": after it nothing more is done
            score.samples.append(value)
            score.reasons.append(reason)
        if score.samples:
            score.value = round(sum(score.samples) / len(score.samples), 4)
        return score


def expected_value(odds: dict[str, float], ends_task: bool = False) -> float:
    """The verdict's value in expectation over `odds` (verdict -> probability); for an action that ends
    the task only "complete" counts."""
    if ends_task:
        return round(odds.get("complete", 0.0), 4)
    return round(sum(VERDICT_VALUES[v] * p for v, p in odds.items() if v in VERDICT_VALUES), 4)


def _ends_task(action: str) -> bool:
    try:
        return parse_action(action).name in ANSWER_ACTIONS
    except ActionError:
        return False


def read_verdict(text: str, data: Any = None) -> tuple[float | None, str]:
    """(value, reason) from a JSON verdict, a numeric score, or the last verdict word in plain text."""
    if isinstance(data, dict):
        reason = str(data.get("reason", ""))
        verdict = str(data.get("verdict", data.get("status", ""))).strip().lower()
        verdict = _VERDICT_ALIASES.get(verdict, verdict)
        if verdict in VERDICT_VALUES:
            return VERDICT_VALUES[verdict], reason
        number = data.get("score")
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return min(1.0, max(0.0, float(number))), reason
    words = _VERDICT_IN_TEXT.findall(text)
    if not words:
        return None, text.strip()
    verdict = words[-1].lower()  # models reason first and conclude last
    verdict = _VERDICT_ALIASES.get(verdict, verdict)
    return VERDICT_VALUES[verdict], text.strip()


CHANGES_LISTED = 12  # predicted appearances (and disappearances) shown per step; the rest are counted
CHANGE_TOKENS = 40  # of one predicted appearance (the schema asks for 80 characters; not every endpoint keeps to it)
ACTION_TOKENS = PART_TOKENS["action"] or 0  # of the action judged (a fill can type 200,000 characters)
TARGET_CHARS = 120  # of the acted-on element's page line


def _trajectory_text(action: str, imagined: Sequence[ImaginedStep] | None, page_text: str = "") -> str:
    """The action (with the page's line of the element it acts on) and, per imagined step, the
    predicted change set: what the world model says appears, disappears and where the page ends up.
    The verifier compares that with the page and the task (a prediction that the wrong tab gets
    selected must read as wrong, whatever the action looks like)."""
    if imagined is None:
        return (f"Action: {clip_to_tokens(action, ACTION_TOKENS)}{_target_text(action, page_text)}\n"
                "(No prediction: judge the action itself.)")
    lines = []
    for i, step in enumerate(imagined, 1):
        label = "Action" if i == 1 else f"Then (imagined step {i})"
        prediction = step.prediction
        shown = clip_to_tokens(step.action, ACTION_TOKENS)
        if not (prediction.description or prediction.appear or prediction.disappear or prediction.url):
            lines.append(f"{label}: {shown}{_target_text(step.action, page_text)}\nPredicted outcome: "
                         "(none: the world model's answer was empty or unreadable; judge the action itself)")
            continue
        lines.append(f"{label}: {shown}{_target_text(step.action, page_text)}\n"
                     f"Predicted outcome: {describe(prediction)}")
        for word, items in (("appear", prediction.appear), ("disappear", prediction.disappear)):
            if items:
                more = f" (and {len(items) - CHANGES_LISTED} more)" if len(items) > CHANGES_LISTED else ""
                listed = "; ".join(clip_to_tokens(item, CHANGE_TOKENS) for item in items[:CHANGES_LISTED])
                lines.append(f"Predicted to {word}: {listed}{more}")
    return "\n".join(lines)


def _target_text(action: str, page_text: str) -> str:
    """' (on: <the page's line for the element>)' for an action on an element id shown in the page, so a
    small verifier need not look the id up itself; '' otherwise (an answer, a scroll, an id not shown)."""
    try:
        parsed = parse_action(action)
    except ActionError:
        return ""
    ids = parsed.element_ids()
    if not ids:
        return ""
    line = re.search(rf"^[ \t]*\[{re.escape(ids[0])}\][ \t]*(.+)$", page_text, re.MULTILINE)
    if line is None:
        return ""
    return f" (on: {line.group(1).strip()[:TARGET_CHARS]})"
