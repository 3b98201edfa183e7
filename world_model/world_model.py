"""The LLM world model: predict what an action does to a page, and imagine several steps ahead.

Imagining never touches the browser: it reads an Observation and asks models. Prompts put the task
and the page (with --vision, its picture too) first and the action last, so all candidates of one
step share a long prompt prefix (endpoints with prefix caching serve that part once).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from envs.actions import ANSWER_ACTIONS, ActionError, format_action, parse_action
from envs.rendering import render_text
from envs.tokens import clip_to_tokens, count_tokens, trim_marker
from envs.types import Observation
from world_model.known_outcomes import describe_known, known_outcome
from world_model.messages import Message, PagePicture, shown_to
from world_model.templates import PART_TOKENS, load_template


class Answer(Protocol):
    text: str
    data: Any  # the parsed JSON, when the model's answer held some


class ChatModel(Protocol):
    """What the world model asks of a model: one answer per call for a role (agent/llm's LLM is one;
    imports point agent -> world_model, so the world model names only what it needs)."""

    async def complete(self, role: Literal["policy", "world_model", "verifier"], messages: list[Message], *,
                       n: int = 1, json_schema: dict[str, Any] | None = None,
                       temperature: float | None = None) -> Sequence[Answer]: ...

PROMPTS = Path(__file__).parent / "prompts"

# JSON Schemas for structured outputs; `title` names the schema in the request. The lengths bound
# what an endpoint enforcing schemas (llama.cpp) generates: on a CPU every token of the K answers costs.
PREDICTION_SCHEMA: dict[str, Any] = {
    "title": "prediction",
    "type": "object",
    "properties": {
        "changes": {"type": "string", "maxLength": 240},
        "url": {"type": "string", "maxLength": 200},
        "appear": {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 6},
        "disappear": {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 6},
    },
    "required": ["changes", "url", "appear", "disappear"],
    "additionalProperties": False,
}
NEXT_ACTION_SCHEMA: dict[str, Any] = {
    "title": "next_action",
    "type": "object",
    "properties": {"action": {"type": "string"}, "reason": {"type": "string"}},
    "required": ["action", "reason"],
    "additionalProperties": False,
}


@dataclass
class Prediction:
    """What the world model expects right after an action."""

    description: str  # what changes, in words
    url: str | None = None  # the URL it expects (None: not said)
    appear: list[str] = field(default_factory=list)  # elements/text expected to appear
    disappear: list[str] = field(default_factory=list)  # elements/text expected to disappear
    structured: bool = True  # False when the answer was plain text and only `description` is known
    known: str | None = None  # "fails" or "no change" when the page told it, not a model (known_outcomes.py)


@dataclass
class ImaginedStep:
    action: str  # canonical action text
    prediction: Prediction
    note: str | None = None  # why imagination stopped after this step, when it did early

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WorldModel(Protocol):
    async def imagine(
        self, goal: str, obs: Observation, action: str, horizon: int, *,
        history: Sequence[str] = (), page_text: str | None = None, picture: PagePicture | None = None,
    ) -> list[ImaginedStep]: ...

    async def predict(self, goal: str, page_text: str, history: Sequence[str], imagined: Sequence[ImaginedStep],
                      action: str, *, picture: PagePicture | None = None) -> Prediction:
        """The page after `action`, taken after the `imagined` steps from the real page `page_text`
        (and its `picture`, shown to the roles it is for)."""
        ...


class LLMWorldModel:
    """Predictions from the `world_model` role; the next imagined actions (horizon > 1) from `policy`."""

    def __init__(self, llm: ChatModel, observation_tokens: int | None = None) -> None:
        self.llm = llm
        self.observation_tokens = observation_tokens
        self.predict_prompt = load_template(PROMPTS / "predict.txt")
        self.policy_prompt = load_template(PROMPTS / "imagined_policy.txt")

    async def imagine(
        self,
        goal: str,
        obs: Observation,
        action: str,
        horizon: int = 1,
        *,
        history: Sequence[str] = (),
        page_text: str | None = None,
        picture: PagePicture | None = None,
    ) -> list[ImaginedStep]:
        """Predict `action` on `obs`, then let an imagined policy continue on the imagined page,
        up to `horizon` steps. Stops early when the imagined policy answers (ends the task) or
        proposes something that is not an action. `picture` is `obs`'s screenshot with set-of-marks,
        shown to the roles it is for (the prediction is then made from it too)."""
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        known = known_prediction(action, obs, history)
        if known is not None:
            return [ImaginedStep(action, known, note=KNOWN_NOTE)]
        page = page_text if page_text is not None else render_text(obs, self.observation_tokens)
        shared = {"goal": goal, "history": format_history(history), "observation": page}
        steps: list[ImaginedStep] = []
        while True:
            prediction = await self.predict(goal, page, history, steps, action, picture=picture)
            steps.append(ImaginedStep(action, prediction))
            if len(steps) >= horizon:
                return steps
            if parse_action(action).name in ANSWER_ACTIONS:
                steps[-1].note = "the imagined policy finished the task"
                return steps
            messages = self.policy_prompt.render(**shared, imagined_so_far=imagined_text(steps),
                                                 picture=shown_to("policy", picture))
            [answer] = await self.llm.complete("policy", messages, json_schema=NEXT_ACTION_SCHEMA)
            # The LLM layer puts the parsed JSON into `data` when it finds any; else the text is the action.
            data = answer.data if isinstance(answer.data, dict) else None
            proposed = str(data.get("action", "")) if data else answer.text
            try:
                action = format_action(parse_action(proposed))
            except ActionError as exc:
                steps[-1].note = f"the imagined policy proposed no valid action ({exc})"
                return steps

    async def predict(self, goal: str, page_text: str, history: Sequence[str], imagined: Sequence[ImaginedStep],
                      action: str, *, picture: PagePicture | None = None) -> Prediction:
        messages = self.predict_prompt.render(goal=goal, history=format_history(history), observation=page_text,
                                              imagined_so_far=imagined_text(imagined), action=action,
                                              picture=shown_to("world_model", picture))
        [answer] = await self.llm.complete("world_model", messages, json_schema=PREDICTION_SCHEMA)
        return parse_prediction(answer.text, answer.data)


KNOWN_NOTE = "known from the page: no model was asked"


def known_prediction(action: str, obs: Observation, history: Sequence[str] = ()) -> Prediction | None:
    """The prediction for `action` when the page itself tells its outcome (world_model/known_outcomes.py)."""
    known = known_outcome(action, obs, history)
    if known is None:
        return None
    outcome, why = known
    return Prediction(describe_known(outcome, why), url=obs.url, known=outcome)


def parse_prediction(text: str, data: Any = None) -> Prediction:
    """A Prediction from the model's JSON (`data`, parsed by the LLM layer), or from plain text
    (then only the description is known)."""
    if isinstance(data, dict) and any(key in data for key in ("changes", "description", "url")):
        changes = data.get("changes", data.get("description", ""))
        url = data.get("url")
        return Prediction(
            description=str(changes or "").strip(),
            url=str(url).strip() if url else None,
            appear=_strings(data.get("appear")),
            disappear=_strings(data.get("disappear")),
        )
    description = text.strip()
    for prefix in ("State changes:", "State change:", "Changes:"):  # WebDreamer's plain-text form
        if description.lower().startswith(prefix.lower()):
            description = description[len(prefix):].strip()
    return Prediction(description=description, structured=False)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return []


ACTION_TOKENS = 100  # of one action in the history (a fill can type 200,000 characters)
PREDICTION_TOKENS = 200  # of one prediction's description (an endpoint need not keep to the schema's length)


def format_history(history: Sequence[str], max_tokens: int | None = None) -> str:
    """The actions so far, numbered, each within ACTION_TOKENS; when they do not all fit in `max_tokens`
    (default: the prompt's history budget), the latest that fit, after a line saying what was left out."""
    if not history:
        return "(none: this is the first step)"
    budget = max_tokens if max_tokens is not None else PART_TOKENS["history"] or 0
    lines: list[str] = []
    used = 0
    for number in range(len(history), 0, -1):  # the latest first: they say where the run is
        line = f"{number}. {clip_to_tokens(history[number - 1], ACTION_TOKENS)}"
        cost = count_tokens(line) + 1
        if lines and used + cost > budget - 20:  # room for the line saying what was left out
            left_out = sum(len(a) for a in history[:number])
            lines.append(f"(actions 1 to {number}: {trim_marker(left_out)})")
            break
        lines.append(line)
        used += cost
    return "\n".join(reversed(lines))


def imagined_text(steps: Sequence[ImaginedStep]) -> str:
    """The imagined actions so far, after the real page (empty at the first imagined step)."""
    if not steps:
        return ""
    lines = ["", "Imagined since this page (not real yet):"]
    for i, step in enumerate(steps, 1):
        lines.append(f"{i}. {clip_to_tokens(step.action, ACTION_TOKENS)} -> {describe(step.prediction)}")
    return "\n".join(lines) + "\n"


def describe(prediction: Prediction) -> str:
    """One line: what changes, and where the page ends up."""
    text = clip_to_tokens(prediction.description, PREDICTION_TOKENS) if prediction.description else "(no description)"
    if prediction.url:
        text += f" [url: {clip_to_tokens(prediction.url, ACTION_TOKENS)}]"
    return text
