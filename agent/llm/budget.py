"""Counting what a task spends on LLM calls, and stopping it when its budget is spent."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from agent.llm.protocol import LLM, ROLES, Completion, Role, Usage, sum_usage
from traces.schema import prompt_hash
from world_model.messages import Message


class BudgetExceeded(Exception):
    """The task's budget is spent; `reason` says which limit and by how much."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class CallRecord:
    """One `complete()` call: what was asked, what came back, what it cost."""

    role: Role
    model: str
    messages: list[Message]
    prompt_hash: str
    answers: list[str]
    usage: Usage  # summed over the call's answers; latency_s is the call's wall time
    started_at: float  # time.time() when the call started
    n: int = 1
    json_schema: dict[str, Any] | None = None
    answer_probs: list[dict[str, dict[str, float]] | None] | None = None  # per answer: Completion.choice_probs

    def to_dict(self) -> dict[str, Any]:
        probs = {"answer_probs": self.answer_probs} if self.answer_probs and any(self.answer_probs) else {}
        return {
            "role": self.role,
            "model": self.model,
            "prompt_hash": self.prompt_hash,
            "messages": self.messages,
            "answers": self.answers,
            "usage": self.usage.to_dict(),
            "started_at": self.started_at,
            "n": self.n,
            "json_schema": self.json_schema.get("title") if self.json_schema else None,
        } | probs


@dataclass
class UsageMeter:
    """Every call recorded, with totals overall and per role."""

    calls: list[CallRecord] = field(default_factory=list)

    def record(self, call: CallRecord) -> None:
        self.calls.append(call)

    def total(self) -> Usage:
        return sum_usage(call.usage for call in self.calls)

    def by_role(self) -> dict[Role, Usage]:
        return {role: sum_usage(c.usage for c in self.calls if c.role == role) for role in ROLES}

    def summary(self) -> dict[str, Any]:
        """Plain data for result files: totals, per role, and the call count."""
        return {
            "calls": len(self.calls),
            "total": self.total().to_dict(),
            "by_role": {role: usage.to_dict() for role, usage in self.by_role().items()},
        }


@dataclass
class Budget:
    """Per-task limits; None means unlimited. Tokens are prompt + completion tokens."""

    max_tokens: int | None = None
    max_calls: int | None = None
    max_usd: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_tokens", "max_calls", "max_usd"):
            limit = getattr(self, name)
            # NaN compares false with everything, so it is refused explicitly: it would never stop a run.
            if limit is not None and (isinstance(limit, bool) or not math.isfinite(limit) or limit <= 0):
                raise ValueError(f"budget {name} must be a positive, finite number, got {limit!r}")

    def exceeded(self, meter: UsageMeter) -> str | None:
        """Why no further call may be made, or None while there is budget left."""
        total = meter.total()
        if self.max_tokens is not None and total.total_tokens >= self.max_tokens:
            return f"token budget of {self.max_tokens} spent ({total.total_tokens} used)"
        if self.max_calls is not None and len(meter.calls) >= self.max_calls:
            return f"call budget of {self.max_calls} spent ({len(meter.calls)} calls made)"
        if self.max_usd is not None and total.cost_usd >= self.max_usd:
            return f"dollar budget of ${self.max_usd:g} spent (${total.cost_usd:.4f} used)"
        return None

    def check(self, meter: UsageMeter) -> None:
        reason = self.exceeded(meter)
        if reason:
            raise BudgetExceeded(reason)


class MeteredLLM:
    """An LLM that checks the budget before each call and records each call after it.

    Calls already in flight when the budget runs out still finish and are counted, so the final
    total can overshoot a limit by up to the concurrent calls' usage.
    """

    def __init__(self, llm: LLM, meter: UsageMeter | None = None, budget: Budget | None = None) -> None:
        self.llm = llm
        self.meter = meter if meter is not None else UsageMeter()
        self.budget = budget if budget is not None else Budget()

    async def complete(
        self,
        role: Role,
        messages: list[Message],
        *,
        n: int = 1,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> list[Completion]:
        self.budget.check(self.meter)
        started_at = time.time()
        started = time.perf_counter()
        completions = await self.llm.complete(role, messages, n=n, json_schema=json_schema, temperature=temperature)
        usage = sum_usage(c.usage for c in completions)
        usage.latency_s = time.perf_counter() - started
        self.meter.record(
            CallRecord(
                role=role,
                model=completions[0].model if completions else "",
                messages=messages,
                prompt_hash=prompt_hash(messages),
                answers=[c.text for c in completions],
                usage=usage,
                started_at=started_at,
                n=n,
                json_schema=json_schema,
                answer_probs=[c.choice_probs for c in completions],
            )
        )
        return completions
