"""Prompt templates rendered strictly: a placeholder without a value, or a value without a
placeholder, is an error — a prompt never silently loses the task or the page.

A template file holds chat messages. A line `[system]` or `[user]` starts a message; `{{name}}` is a
placeholder. Values are inserted as-is (never re-scanned), so page text cannot inject placeholders.

Every role's prompt in a step starts with the same text (parts/step_context.txt), so an endpoint's prompt
cache (llama.cpp's, OpenAI's cheaper cached input) serves the page once per step instead of once per
role.

Every part of a prompt has a token budget (PART_TOKENS): a value over it is cut in its middle with a
visible "… [trimmed N characters]", so no page, dialog, action or imagined text can blow a prompt up.
The page's own budget is kept where it is rendered (envs/rendering.py, --observation-tokens);
`PromptTemplate.token_bound` is the most tokens a rendered prompt can take.

With --vision, `{{picture}}` (right after the page, so still in the shared start) is where the page's
set-of-marks screenshot goes: a caption (parts/picture.txt) and an image part, making the message's
content a list of parts (world_model/messages.py). Without a picture it renders as nothing, and the
prompt is the text-only one. Pictures are not in `token_bound`: their tokens depend on the endpoint.

Untrusted text (the page, what was imagined about it) sits in the templates between delimiter tags,
<page>...</page> and <imagined>...</imagined>. Those tags come only from the template: any spelling of
them inside a value is neutralised to [page], [/page], ..., so page text cannot close its block early
and pose as instructions after it.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from envs.tokens import clip_to_tokens, count_tokens
from world_model.messages import Message, image_part, text_part

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PICTURE = "picture"  # the placeholder of the page's picture: not a text value
PICTURE_SLOT = re.compile(r"\{\{\s*" + PICTURE + r"\s*\}\}")
ROLE_LINE = re.compile(r"^\[(system|user|assistant)\]\s*$", re.MULTILINE)
DATA_TAGS = ("page", "imagined")
# An opening or closing data tag however spelled: case, spaces, attributes (`< / PAGE x=1 >`).
_DATA_TAG = re.compile(r"<\s*(/?)\s*(" + "|".join(DATA_TAGS) + r")\b[^<>]*>", re.IGNORECASE)


# The most tokens each placeholder's value may take. The goal is the user's; history is the run's actions
# (format_history keeps the latest within it); the rest carries what a page or a model wrote, shown
# again to a model. None: budgeted where it is made (the page: render_text's budget).
PART_TOKENS: dict[str, int | None] = {
    "goal": 1000,
    "history": 1000,  # previous actions
    "observation": None,  # the page, with its URL, title, tabs and last action error (dialogs included)
    "imagined_so_far": 1500,  # imagined steps and their predictions
    "action": 300,  # the action a prediction is asked for
    "trajectory": 2000,  # the action and its imagined outcome, for the verifier
    "candidates": 1000,  # self-refinement's list
    "versions": 2500,  # revise: each version with its prediction and critique
    "k": 10,
}
SEAM_TOKENS = 2  # a value's tokens may merge with the template's around it, off by a token each side


class TemplateError(ValueError):
    pass


class PromptTemplate:
    def __init__(self, text: str, name: str = "<template>") -> None:
        self.name = name
        self.messages = _split_messages(text, name)
        self.variables = {m for _, body in self.messages for m in PLACEHOLDER.findall(body)} - {PICTURE}
        self.has_picture_slot = any(PICTURE_SLOT.search(body) for _, body in self.messages)
        unbudgeted = sorted(self.variables - PART_TOKENS.keys())
        if unbudgeted:
            raise TemplateError(f"prompt {name}: no token budget for {', '.join(unbudgeted)} (PART_TOKENS)")

    def render(self, *, picture: str | None = None, **values: object) -> list[Message]:
        """Chat messages with every placeholder filled, and `picture` (an image URL) at `{{picture}}`;
        raises TemplateError on a missing or unused value."""
        missing = sorted(self.variables - values.keys())
        unused = sorted(values.keys() - self.variables)
        if missing:
            raise TemplateError(f"prompt {self.name}: no value for {', '.join(missing)}")
        if unused:
            raise TemplateError(f"prompt {self.name}: no placeholder for {', '.join(unused)}")
        if picture is not None and not self.has_picture_slot:
            raise TemplateError(f"prompt {self.name}: no {{{{{PICTURE}}}}} placeholder for the page's picture")
        parts = {name: _within_budget(name, neutralise_delimiters(str(value))) for name, value in values.items()}

        def filled(text: str) -> str:
            return PLACEHOLDER.sub(lambda m: parts[m.group(1)], text)

        return [{"role": role, "content": _with_picture([filled(text) for text in PICTURE_SLOT.split(body)], picture)}
                for role, body in self.messages]

    def token_bound(self, observation_tokens: int) -> int:
        """The most tokens a rendered prompt takes (its messages' contents, counted with envs/tokens.py),
        the page rendered within `observation_tokens`."""
        total = 0
        for _, body in self.messages:
            total += count_tokens(PLACEHOLDER.sub("", body))
            for name in (n for n in PLACEHOLDER.findall(body) if n != PICTURE):
                budget = PART_TOKENS[name]
                total += (observation_tokens if budget is None else budget) + 2 * SEAM_TOKENS
        return total


def _with_picture(texts: list[str], picture: str | None) -> str | list[dict[str, Any]]:
    """A message's content from its texts around `{{picture}}` slots: the text alone without a picture;
    with one, parts: each slot a caption and the image."""
    if picture is None or len(texts) == 1:
        return "".join(texts)
    content = []
    for index, text in enumerate(texts):
        if index:
            content.append(image_part(picture))
        if index < len(texts) - 1:
            text += picture_caption()
        if text:
            content.append(text_part(text))
    return content


def _within_budget(name: str, text: str) -> str:
    budget = PART_TOKENS.get(name)
    return text if budget is None else clip_to_tokens(text, budget)


def neutralise_delimiters(text: str) -> str:
    """`text` with every data delimiter tag (<page>, </imagined>, ...) turned into a harmless [page], [/imagined]."""
    return _DATA_TAG.sub(lambda m: f"[{m.group(1)}{m.group(2).lower()}]", text)


SHARED = Path(__file__).parent / "prompts" / "parts"
STEP_CONTEXT_LINE, ACTIONS_LINE = "[step context]\n", "[actions]\n"


@cache
def picture_caption() -> str:
    """What goes before the page's picture (after the page's text, in the same text part)."""
    return "\n\n" + (SHARED / "picture.txt").read_text(encoding="utf-8").strip()


@cache
def load_template(path: str | Path) -> PromptTemplate:
    """A template file. One that starts with the line `[step context]` continues the step's shared
    context (parts/step_context.txt: the system text, then the task, history and page) with its own text;
    a line `[actions]` stands for the list of browser actions (parts/actions.txt)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if text.startswith(STEP_CONTEXT_LINE):
        text = (SHARED / "step_context.txt").read_text(encoding="utf-8") + text.removeprefix(STEP_CONTEXT_LINE)
    text = text.replace(ACTIONS_LINE, (SHARED / "actions.txt").read_text(encoding="utf-8"))
    return PromptTemplate(text, name=path.name)


def _split_messages(text: str, name: str) -> list[tuple[str, str]]:
    markers = list(ROLE_LINE.finditer(text))
    if not markers or text[: markers[0].start()].strip():
        raise TemplateError(f"prompt {name}: must start with a [system] or [user] line")
    messages = []
    for marker, following in zip(markers, markers[1:] + [None]):
        end = following.start() if following else len(text)
        messages.append((marker.group(1), text[marker.end() : end].strip("\n")))
    return messages
