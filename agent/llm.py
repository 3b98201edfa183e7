"""The LLM layer's contract. Every role (policy, world_model, verifier) is served through `LLM`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["policy", "world_model", "verifier"]
ROLES: tuple[Role, ...] = ("policy", "world_model", "verifier")


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0


@dataclass
class Completion:
    """One answer of one call. `data` holds the parsed JSON when a schema was requested and met."""

    text: str
    role: Role
    model: str
    usage: Usage = field(default_factory=Usage)
    data: Any = None


@runtime_checkable
class LLM(Protocol):
    async def complete(
        self,
        role: Role,
        messages: list[dict[str, str]],
        *,
        n: int = 1,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> list[Completion]:
        """`n` answers for `messages` from the model configured for `role`."""
        ...
