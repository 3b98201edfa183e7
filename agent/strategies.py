"""Planner settings. The strategies are settings of the one graph in agent/graph.py, not copies of it:

- `reactive`: one proposal from the policy, acted on directly (K is 1; nothing imagined or scored);
- `rerank`:   K proposals scored by the verifier on the action alone, best one acted on;
- `dreamer`:  K proposals, each imagined H steps ahead by the world model, the imagined
              trajectories scored by the verifier (m samples), best one acted on (WebDreamer).
"""
from __future__ import annotations

from dataclasses import dataclass

from agent.budget import Budget

STRATEGIES = ("reactive", "rerank", "dreamer")


@dataclass
class PlannerConfig:
    strategy: str = "dreamer"
    k: int = 5  # candidate actions proposed per step
    horizon: int = 1  # imagined steps per candidate (dreamer)
    samples: int = 3  # verifier samples averaged per candidate (m)
    self_refine: bool = False  # one extra policy call that drops irrelevant candidates
    max_steps: int = 20  # real actions per task
    repeat_limit: int = 3  # stop when the same action ran this many times in a row
    parse_failure_limit: int = 3  # stop after this many proposals in a row without a usable action
    observation_tokens: int | None = None  # token budget of the page text in prompts (None: envs' default)
    budget: Budget | None = None  # per-task LLM budget (tokens, calls, dollars)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        for name in ("k", "horizon", "samples", "max_steps", "repeat_limit", "parse_failure_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def candidates(self) -> int:
        return 1 if self.strategy == "reactive" else self.k

    @property
    def imagines(self) -> bool:
        return self.strategy == "dreamer"

    @property
    def scores(self) -> bool:
        return self.strategy != "reactive"
