"""The LLM layer's contract. Every role (policy, world_model, verifier) is served through `LLM`.

Usage accounting: summing `usage` over the completions one `complete()` call returns gives that
call's usage (when an endpoint returns n choices in one response, the response's usage sits on the
first completion and the others carry zeros).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol, runtime_checkable

from world_model.messages import Message, content_text

Role = Literal["policy", "world_model", "verifier"]
ROLES: tuple[Role, ...] = ("policy", "world_model", "verifier")


MODEL_SEED_HELP = ("seed sent with every model request (the i-th answer asked of a prompt gets N + i), so "
                   "sampled answers repeat run to run where the endpoint honours it (llama.cpp, OpenAI); "
                   "default: $FORETHOUGHT_SEED, else none")


class ConfigError(Exception):
    """A misconfiguration the user can fix (no model, bad spec, bad key); the message says what to do."""


@dataclass
class Usage:
    prompt_tokens: int = 0  # includes cached_tokens
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    unpriced_calls: int = 0  # calls to models missing from the price table (counted at cost 0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Usage)})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(Usage)} | {"total_tokens": self.total_tokens}


def sum_usage(usages: Iterable[Usage]) -> Usage:
    total = Usage()
    for usage in usages:
        total = total + usage
    return total


@dataclass
class Completion:
    """One answer of one call. `data` holds the parsed JSON when a schema was requested and met."""

    text: str
    role: Role
    model: str
    usage: Usage = field(default_factory=Usage)
    data: Any = None
    # Per enum field of the requested schema: the model's probability of each allowed value where the
    # answer wrote it (agent/llm/parsing.enum_probabilities); None when the endpoint gave no logprobs.
    choice_probs: dict[str, dict[str, float]] | None = None


@runtime_checkable
class LLM(Protocol):
    async def complete(
        self,
        role: Role,
        messages: list[Message],
        *,
        n: int = 1,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> list[Completion]:
        """`n` answers for `messages` from the model configured for `role`. A message's content is text, or
        text and image parts (world_model/messages.py)."""
        ...


@runtime_checkable
class InOrderLLM(Protocol):
    """An LLM that answers in a fixed order (scripted): a resumed run lets it skip the answers its
    finished steps were given, so the next call gets the answer it would have got uninterrupted."""

    def skip_answered(self, calls: list[tuple[Role, list[Message], int]]) -> None: ...


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"unknown LLM role {role!r}; roles are {', '.join(ROLES)}")
    return role


def last_user_message(messages: list[Message]) -> str:
    """The text of the last user message (its pictures left out)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""
