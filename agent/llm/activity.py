"""Which LLM calls are in flight, for a live display (`forethought run` shows it, agent/cli/progress.py).

Each call's stage is named from its role and the title of the JSON schema it asks for, so nothing in the
planner reports anything: `RoutedLLM` tells a `CallActivity` when each call begins and ends. Calls of one
stage that run together (the K imagined outcomes a step gathers) are one batch: "imagining 2 of 3" is the
batch's next answer awaited, 1 of 3 being in.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agent.llm.protocol import Role

# What a call is for, by role and schema title (agent/proposer.py, world_model/world_model.py,
# agent/verifier.py, agent/strategies/revise.py and beam.py). A schema not named here takes its role's name.
STAGES: dict[tuple[Role, str], str] = {
    ("policy", "candidates"): "proposing",
    ("policy", "keep"): "refining candidates",
    ("policy", "next_action"): "imagining next actions",
    ("policy", "revision"): "revising",
    ("world_model", "prediction"): "imagining",
    ("verifier", "verdict"): "scoring",
}
ROLE_STAGES: dict[Role, str] = {"policy": "asking the policy", "world_model": "imagining", "verifier": "scoring"}
UNSTRUCTURED = "judging"  # the only calls without a schema are the answer judge's (agent/evaluation/judge.py)


def stage_of(role: Role, json_schema: dict[str, Any] | None) -> str:
    if json_schema is None:
        return UNSTRUCTURED
    return STAGES.get((role, str(json_schema.get("title"))), ROLE_STAGES[role])


@dataclass(frozen=True)
class Stage:
    """A batch of calls of one stage: `done` of `total` answered, the first begun at `since` (time.monotonic())."""

    name: str
    done: int
    total: int
    since: float

    def __str__(self) -> str:
        return self.name if self.total == 1 else f"{self.name} {min(self.done + 1, self.total)} of {self.total}"


Listener = Callable[[tuple[Stage, ...]], None]


@dataclass
class _Batch:
    since: float
    total: int = 0
    done: int = 0


class CallActivity:
    """The calls in flight, by stage in the order they began, told to `listener` whenever that changes. The
    changes of one turn of the event loop are told once, after it: calls gathered together have all begun
    by then, so a batch of three is first told as "imagining 1 of 3", never as "1 of 1"."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.batches: dict[str, _Batch] = {}
        self.telling = False

    @contextmanager
    def call(self, role: Role, json_schema: dict[str, Any] | None) -> Iterator[None]:
        """Around one call of `role` asking for `json_schema`."""
        name = stage_of(role, json_schema)
        batch = self.batches.setdefault(name, _Batch(since=time.monotonic()))
        batch.total += 1
        self._changed()
        try:
            yield
        finally:
            batch.done += 1
            if batch.done == batch.total:  # the batch is over: the next call of this stage begins another
                del self.batches[name]
            self._changed()

    def stages(self) -> tuple[Stage, ...]:
        return tuple(Stage(name, b.done, b.total, b.since) for name, b in self.batches.items())

    def _changed(self) -> None:
        if not self.telling:
            self.telling = True
            asyncio.get_running_loop().call_soon(self._tell)

    def _tell(self) -> None:
        self.telling = False
        self.listener(self.stages())
