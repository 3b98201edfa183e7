"""Planner settings. The strategies are settings of the one graph in agent/graph.py, not copies of it:

- `reactive`: one proposal from the policy, acted on directly (K is 1; nothing imagined or scored);
- `rerank`:   K proposals scored by the verifier on the action alone, best one acted on;
- `dreamer`:  K proposals, each imagined H steps ahead by the world model, the imagined
              trajectories scored by the verifier (m samples), best one acted on (WebDreamer);
- `revise`:   one proposal, imagined and critiqued by the verifier; the policy revises it after seeing
              the outcome and the critique, up to R rounds; the first version runs unless a revision
              out-scores it by `overrule_margin` (agent/strategies/revise.py);
- `beam`:     search in imagination: the K proposals start paths that the imagined policy extends,
              B kept per depth, every imagined step scored; the first action of the best path runs
              (agent/strategies/beam.py);
- `lookahead`: as dreamer, but a candidate classified reversible, on a file:// page or a local site
              (any origin with `lookahead_any_origin`), is tried for real in a forked browser context
              and its real outcome is scored; irreversible ones are only imagined (agent/strategies/lookahead.py);
- `tree`:     best-first search in the REAL environment on local pages: every node is tried in a fresh
              fork (the local site reset, the task's start URL, real history and path replayed), the
              verifier scores the real outcome, the best node grows next (K children, depth H, at most
              `tree_expansions` expansions); the first action of the best real path runs (agent/strategies/tree.py);
- `adaptive`: per step, cheap difficulty signals choose one of reactive, rerank, dreamer and beam and
              its K/H/m (agent/strategies/adaptive.py; thresholds in `AdaptiveSettings`, fitted by
              `forethought calibrate`).

Every strategy that scores candidates keeps the greedy one (the first proposal: what `reactive` would
do, agent/proposer.py) unless another out-scores it by `overrule_margin`, and then passes the risk gate
(agent/risk.py): an action predicted to be irreversible needs a higher verifier margin, and `safe`
refuses it.
"""
from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from agent.llm.budget import Budget
from agent.llm.protocol import ROLES, Role

STRATEGIES = ("reactive", "rerank", "dreamer", "revise", "beam", "lookahead", "tree", "adaptive")
# The roles each strategy calls, so that a run needs a model only for those.
ROLES_USED: dict[str, tuple[Role, ...]] = {
    "reactive": ("policy",), "rerank": ("policy", "verifier"),
    **{strategy: ROLES for strategy in ("dreamer", "revise", "beam", "lookahead", "tree", "adaptive")},
}
# A run's wall-clock limit unless told otherwise: a 20-step dreamer run with Qwen2.5-Coder-1.5B on 2 CPU
# cores (74 s a step, README's bench table) takes about 25 minutes, so 30 minutes ends only a run that is
# stuck, and within the session that started it.
DEFAULT_TIMEOUT_S = 1800.0
MODES = ("reactive", "rerank", "dreamer", "revise", "beam")  # what one step can run (adaptive picks one)
AGGREGATES = ("last", "min", "mean")


@dataclass(frozen=True)
class StepPlan:
    """What one step spends: the mode it runs and its knobs."""

    mode: str  # one of MODES, or "lookahead" or "tree"
    k: int  # candidates considered
    horizon: int = 1  # imagined steps (dreamer: per candidate; beam, tree: search depth)
    samples: int = 1  # verifier samples per scoring (m)
    width: int = 1  # beam width (B)

    @property
    def imagines(self) -> bool:
        """Whether candidates are imagined before scoring (beam imagines in its own search)."""
        return self.mode in ("dreamer", "revise", "lookahead")

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "k": self.k, "horizon": self.horizon, "samples": self.samples, "width": self.width}


class ModeSettings(BaseModel):
    """The K/H/m (and beam width) adaptive gives a mode when it picks it."""

    model_config = {"extra": "forbid"}
    k: int = Field(default=3, ge=1)
    horizon: int = Field(default=1, ge=1)
    samples: int = Field(default=1, ge=1)
    width: int = Field(default=1, ge=1)


class AdaptiveSettings(BaseModel):
    """Difficulty signals' thresholds for `adaptive` (see agent/strategies/adaptive.py for how they are used).
    Load with `AdaptiveSettings.load(FILE)` (JSON or TOML); `forethought calibrate` writes them."""

    model_config = {"extra": "forbid"}
    # Policy answers in the step's one proposal call. Two suffice to tell agreement (both the same) from
    # doubt, and an endpoint without `n` (llama.cpp) is asked once per answer, so each one costs a prompt.
    proposal_samples: int = Field(default=2, ge=1)
    k: int = Field(default=3, ge=1)  # candidates kept: the greedy one, then the others by votes
    # Easy (act on the greedy action, no more calls): at least this share of the sampled answers
    # agree on it (0.66: two of three), the last step did not surprise, and the action is
    # reversible. On a page the task has not acted on before, the bar is agreement_easy_new_page.
    # Above 1 no step is easy (agreement is at most 1).
    agreement_easy: float = Field(default=0.66, ge=0)
    agreement_easy_new_page: float = Field(default=1.0, ge=0)
    # Hard (search in imagination): the last real step's surprise (1.0 when it failed) at or above this.
    # Above 1 no surprise is hard, not even a failed action.
    surprise_hard: float = Field(default=0.5, ge=0)
    # When proposals disagree: rerank first and imagine only when the verifier is unsure (a cascade:
    # it pays when rerank settles most such steps, as its K calls come on top of dreamer's 2K), or
    # imagine at once. Off by default: with SmolLM2 rerank settled 1 of 11 disagreements on MiniWoB++.
    # A risky step whose proposals agree is always reranked first (its margin must be checked).
    rerank_first: bool = False
    # After rerank: the verifier's best minus its runner-up at or above this settles the step;
    # below it, the candidates are imagined (dreamer).
    spread_clear: float = Field(default=0.5, ge=0, le=1)
    rerank: ModeSettings = ModeSettings(k=3, samples=1)
    dreamer: ModeSettings = ModeSettings(k=3, horizon=1, samples=1)
    beam: ModeSettings = ModeSettings(k=3, horizon=2, samples=1, width=2)
    fitted_from: str | None = None  # what `forethought calibrate` fitted these from, when it did

    @classmethod
    def load(cls, path: str | Path) -> AdaptiveSettings:
        """Settings from a JSON or TOML file; ValueError with one line naming the problem."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"adaptive settings file not found: {path}") from None
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except ValueError as exc:
            kind = "TOML" if path.suffix == ".toml" else "JSON (name it .toml for TOML)"
            raise ValueError(f"adaptive settings file {path} is not valid {kind}: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"adaptive settings file {path}: {problems}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    def plan(self, mode: str) -> StepPlan:
        if mode == "reactive":
            return StepPlan("reactive", k=1)
        mode_settings: ModeSettings = getattr(self, mode)
        return StepPlan(mode, **mode_settings.model_dump())


@dataclass
class PlannerConfig:
    strategy: str = "dreamer"
    k: int = 5  # candidate actions proposed per step
    horizon: int | None = None  # imagined steps (dreamer), search depth (beam, tree); None: 1, beam/tree 2
    samples: int = 3  # verifier samples averaged per candidate (m)
    revisions: int = 2  # revise: rounds of revision after the first version (R)
    beam_width: int = 2  # beam: paths kept per depth (B)
    beam_aggregate: Literal["last", "min", "mean"] = "last"  # beam: a path's value from its step scores
    safe: bool = False  # refuse actions predicted to be irreversible (the agent picks another or stops)
    risk_margin: float = 0.25  # how far an irreversible action must out-score the best reversible one
    # How far another candidate's verifier score (0..1) must beat the greedy candidate's for it to run
    # instead: a verdict that overrules the policy's own first choice must be clear, since a weak
    # verifier is confidently wrong often enough to lose what reactive gets right. 0.2 is less than one
    # verdict step (wrong 0 / on track 0.5 / complete 1) with m = 1, and more than one of m >= 3 samples
    # moving one step (at most 0.17). Ties always go to the greedy candidate; 0 overrules on any lead.
    overrule_margin: float = 0.2
    lookahead_any_origin: bool = False  # lookahead: also try candidates for real on non-local sites
    tree_expansions: int = 3  # tree: nodes whose K children are tried for real, per step (N)
    adaptive: AdaptiveSettings = field(default_factory=AdaptiveSettings)
    self_refine: bool = False  # one extra policy call that drops irrelevant candidates
    max_steps: int = 20  # real actions per task
    repeat_limit: int = 3  # stop when the same action ran this many times in a row
    parse_failure_limit: int = 3  # stop after this many proposals in a row without a usable action
    observation_tokens: int | None = None  # token budget of the page text in prompts (None: envs' default)
    # The roles whose prompts carry the page's viewport screenshot with set-of-marks (--vision); () text only.
    vision: tuple[Role, ...] = ()
    budget: Budget | None = None  # per-task LLM budget (tokens, calls, dollars)
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # wall-clock limit of a run (agent/loop.py); None: none

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        for name in ("k", "horizon", "samples", "beam_width", "tree_expansions", "max_steps", "repeat_limit",
                     "parse_failure_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.revisions < 0:
            raise ValueError(f"revisions must be at least 0, got {self.revisions}")
        if self.beam_aggregate not in AGGREGATES:
            raise ValueError(f"beam_aggregate must be one of {', '.join(AGGREGATES)}, got {self.beam_aggregate!r}")
        if not 0 <= self.risk_margin <= 1:
            raise ValueError(f"risk_margin must be between 0 and 1, got {self.risk_margin}")
        if not 0 <= self.overrule_margin <= 1:
            raise ValueError(f"overrule_margin must be between 0 and 1, got {self.overrule_margin}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"the timeout must be a positive number of seconds, got {self.timeout_s:g}")
        self.vision = vision_roles(self.vision)  # a trace's config holds a list

    def step_plan(self) -> StepPlan | None:
        """The plan of every step of a fixed strategy; None for adaptive (it plans each step)."""
        if self.strategy == "adaptive":
            return None
        k = 1 if self.strategy in ("reactive", "revise") else self.k
        beam = self.strategy == "beam"
        horizon = self.horizon or (2 if self.strategy in ("beam", "tree") else 1)  # one step deep: dreamer, lookahead
        return StepPlan(self.strategy, k=k, horizon=horizon, samples=self.samples, width=self.beam_width if beam else 1)

    @property
    def candidates(self) -> int:
        plan = self.step_plan()
        return plan.k if plan else self.adaptive.k


def vision_roles(roles: str | Sequence[str]) -> tuple[Role, ...]:
    """The roles `--vision` names ("policy,verifier", or a list), in ROLES' order; ValueError for an unknown one."""
    names = [name.strip() for name in roles.split(",")] if isinstance(roles, str) else list(roles)
    unknown = [name for name in names if name not in ROLES]
    if unknown:
        raise ValueError(f"--vision {','.join(names)}: unknown role {unknown[0]!r}; the roles are {', '.join(ROLES)}")
    return tuple(role for role in ROLES if role in names)
