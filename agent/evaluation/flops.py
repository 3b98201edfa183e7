"""Estimated inference FLOPs per task: what a run's LLM calls cost in arithmetic, for comparing models
of different sizes at matched compute (Snell et al. 2024's question, issue #14).

A forward pass costs about 2 x N FLOPs per token for a model of N parameters, so a call costs
    flops = 2 * N * (prompt_tokens - cached_tokens + completion_tokens)
Cached prompt tokens are counted apart and cost nothing here: the server reuses their KV cache instead
of computing them again (llama.cpp's prefix cache; the step's K prompts share the page). The attention
term (which grows with context length) is left out, as in Kaplan et al.'s 2N estimate.

N is the model catalogue's parameter count (agent/llm/catalogue.py), so only catalogue models
(`--model local`, `local:NAME`) have a figure. Any other model (`openai:...`, `gguf:PATH`, scripted,
replayed, a cached model outside the catalogue) has unknown FLOPs: None, never a guess, and so has any
task or mean that includes one.

Read from a task's trace.jsonl: its task event names each role's model spec, and every llm_call event
its role, the model that answered and its token usage. A run may give each role its own model, so the
figures are per role.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.evaluation.summary import json_lines, read_records
from agent.llm.catalogue import find_entry

RESULTS_FILE = "results.jsonl"
FLOPS_PER_PARAMETER_TOKEN = 2  # one multiply and one add per weight per token


@dataclass
class RoleFlops:
    """One role's calls in one task, all answered by `model`."""

    model: str  # the model that answered (a catalogue name for local models), or the spec when unknown
    parameters: int | None  # None: not a catalogue model, so its FLOPs are unknown
    prompt_tokens: int = 0  # including the cached ones
    cached_tokens: int = 0
    completion_tokens: int = 0

    @property
    def computed_tokens(self) -> int:
        """Tokens the model ran a forward pass for: the prompt's uncached part and the answer."""
        return self.prompt_tokens - self.cached_tokens + self.completion_tokens

    @property
    def flops(self) -> float | None:
        if self.parameters is None:
            return None
        return float(FLOPS_PER_PARAMETER_TOKEN * self.parameters * self.computed_tokens)


@dataclass
class TaskFlops:
    """One task's estimated FLOPs, per (role, model) that made calls."""

    by_role: dict[str, RoleFlops] = field(default_factory=dict)  # key: the role, or "role:model" if it used several

    @property
    def flops(self) -> float | None:
        """The sum over roles; None when any role's model has no parameter count."""
        values = [role.flops for role in self.by_role.values()]
        return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))

    @property
    def cached_tokens(self) -> int:
        return sum(role.cached_tokens for role in self.by_role.values())

    def models(self) -> dict[str, str]:
        """Role -> the model that answered it."""
        return {key.split(":", 1)[0]: role.model for key, role in self.by_role.items()}


def parameters_of(spec: str | None, answered_by: str) -> int | None:
    """The parameter count of the model that answered (`answered_by`, as an llm_call event names it)
    for a role configured with `spec` (None: nothing configured, the run default, a local model).
    Known only for catalogue models run locally."""
    if spec is not None and spec != "local" and not spec.startswith("local:"):
        return None  # openai:, gguf:, scripted:, replay: - the catalogue does not vouch for these
    entry = find_entry(answered_by)
    return entry.parameters if entry else None


def flops_of_calls(specs: dict[str, str | None], calls: Iterable[dict[str, Any]]) -> TaskFlops:
    """A task's FLOPs from its role -> model spec map and its llm_call events (role, model, usage)."""
    result = TaskFlops()
    calls = list(calls)
    models_per_role = {c["role"]: {d["model"] for d in calls if d["role"] == c["role"]} for c in calls}
    for call in calls:
        role, model, usage = call["role"], call["model"], call["usage"]
        key = role if len(models_per_role[role]) == 1 else f"{role}:{model}"
        if key not in result.by_role:
            parameters = parameters_of(specs.get(role), model)
            result.by_role[key] = RoleFlops(model if parameters else str(specs.get(role) or model), parameters)
        entry = result.by_role[key]
        entry.prompt_tokens += usage["prompt_tokens"]
        entry.cached_tokens += usage.get("cached_tokens", 0)
        entry.completion_tokens += usage["completion_tokens"]
    return result


def task_flops(trace: Path) -> TaskFlops | None:
    """The FLOPs of the task recorded in `trace` (trace.jsonl); None when there is no trace."""
    if not trace.is_file():
        return None
    specs: dict[str, str | None] = {}
    calls = []
    for event in json_lines(trace):
        if event.get("type") == "task":
            specs = {role: (m or {}).get("model") for role, m in (event.get("models") or {}).items()}
        elif event.get("type") == "llm_call":
            calls.append(event)
    return flops_of_calls(specs, calls)


def eval_run_dirs(path: Path) -> list[Path]:
    """The eval run directories at `path`: itself when it holds results.jsonl, else those of its
    subdirectories that do (bench/compute_frontier.py's OUT holds OUT/miniwob and OUT/local)."""
    if (path / RESULTS_FILE).is_file():
        return [path]
    return sorted(p for p in path.iterdir() if (p / RESULTS_FILE).is_file()) if path.is_dir() else []


def records_with_flops(run_dirs: Sequence[Path]) -> list[tuple[dict[str, Any], TaskFlops | None]]:
    """Every task record of the runs with its FLOPs (from run_dir/<strategy>/<task-id>/trace.jsonl)."""
    return [(record, task_flops(run_dir / record["strategy"] / record["task_id"] / "trace.jsonl"))
            for run_dir in run_dirs for record in read_records(run_dir / RESULTS_FILE)]


def mean_flops(measured: Iterable[TaskFlops | None]) -> float | None:
    """Mean FLOPs per task; None when there is no task or any task's FLOPs are unknown."""
    values = [m.flops if m is not None else None for m in measured]
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def add_flops(summary: dict[str, Any], run_dirs: Sequence[Path]) -> None:
    """Give each strategy of `summary` its mean_flops and mean_cached_tokens per task, over the same
    tasks as its other means (every finished task of the runs' results.jsonl)."""
    measured = records_with_flops(run_dirs)
    for strategy, row in summary["strategies"].items():
        mine = [flops for record, flops in measured if record["strategy"] == strategy]
        row["mean_flops"] = mean_flops(mine)
        cached = [flops.cached_tokens for flops in mine if flops is not None]
        row["mean_cached_tokens"] = sum(cached) / len(cached) if cached and len(cached) == len(mine) else None
