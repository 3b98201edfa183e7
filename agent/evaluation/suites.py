"""Which tasks an eval runs: a suite's tasks (local sites, MiniWoB++, WebArena), the ones --tasks or
--sample selects, and whether a task has an oracle solution."""
from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from agent.llm.protocol import ConfigError
from envs.suites.local import load_local_suite, oracle_of
from envs.suites.miniwob import ORACLE_TASKS, miniwob_suite, suite_task_name
from envs.webarena.config import SITE_ENV_VARS, TaskConfig, TaskConfigError
from envs.webarena.loading import load_webarena_official

SUITES = ("local", "miniwob", "webarena")


class EvalError(ConfigError):
    """A misconfigured evaluation (unknown task, missing site URLs, ...); the message says what to do."""


@dataclass(frozen=True)
class SuiteTask:
    """One task as the runner schedules it: a WebArena-format config (local, webarena suites; local
    placeholders are resolved by each worker against its own sites) or a MiniWoB++ episode."""

    id: str
    suite: str
    config: TaskConfig | None = None
    miniwob_name: str | None = None
    seed: int = 0

    @property
    def sites(self) -> tuple[str, ...]:
        return self.config.sites if self.config is not None else ()


def load_suite(suite: str, task_ids: Iterable[str] | None = None, sample: int | None = None,
               seed: int = 0) -> list[SuiteTask]:
    """The suite's tasks in suite order: those named by `task_ids`, else a seeded random `sample`
    of N, else all. The webarena suite needs its sites' URLs in env vars (SHOPPING, REDDIT, ...)."""
    if suite not in SUITES:
        raise EvalError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    tasks = _all_tasks(suite, seed)
    if task_ids is not None:
        tasks = _select(suite, tasks, [str(t).strip() for t in task_ids if str(t).strip()])
    elif sample is not None:
        if sample < 1:
            raise EvalError(f"--sample must be at least 1, got {sample}")
        chosen = sorted(random.Random(seed).sample(range(len(tasks)), min(sample, len(tasks))))
        tasks = [tasks[i] for i in chosen]
    if suite == "webarena":
        _require_site_urls(tasks)
    return tasks


def _all_tasks(suite: str, seed: int) -> list[SuiteTask]:
    try:
        if suite == "local":
            return [SuiteTask(str(c.task_id), suite, config=c) for c in load_local_suite()]
        if suite == "webarena":
            return [SuiteTask(str(c.task_id), suite, config=c) for c in load_webarena_official(use_env=True)]
    except TaskConfigError as exc:
        raise EvalError(str(exc)) from None
    return [SuiteTask(t.id, suite, miniwob_name=t.name, seed=seed) for t in miniwob_suite(seed=seed)]


def _select(suite: str, tasks: list[SuiteTask], wanted: list[str]) -> list[SuiteTask]:
    if not wanted:
        raise EvalError("--tasks is empty; give task ids separated by commas")
    if suite == "miniwob":
        try:
            names = {suite_task_name(t) for t in wanted}
        except ValueError as exc:
            raise EvalError(str(exc)) from None
        return [t for t in tasks if t.miniwob_name in names]
    known = {t.id for t in tasks}
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise EvalError(f"no task {', '.join(unknown[:5])} in the {suite} suite "
                        f"(its ids: {id_range([t.id for t in tasks])})")
    chosen = set(wanted)
    return [t for t in tasks if t.id in chosen]


def id_range(ids: list[str]) -> str:
    """Task ids for a message: all of a few, else the first four and the last."""
    return ", ".join(ids) if len(ids) <= 8 else f"{', '.join(ids[:4])}, ..., {ids[-1]}"


def _require_site_urls(tasks: list[SuiteTask]) -> None:
    missing = sorted({p for t in tasks if t.config is not None for p in t.config.unresolved_placeholders()})
    if missing:
        wanted = ", ".join(f"{SITE_ENV_VARS[p][0]} (or {SITE_ENV_VARS[p][1]})" for p in missing)
        raise EvalError(
            f"the webarena suite runs on a WebArena deployment: set {wanted} to each site's base URL, "
            f"e.g. export {SITE_ENV_VARS[missing[0]][0]}=http://<webarena-host>:<port> "
            "(or run --suite local, which brings its own sites)"
        )


def has_oracle(task: SuiteTask) -> bool:
    if task.suite == "miniwob":
        return task.miniwob_name in ORACLE_TASKS
    if task.suite == "local" and task.config is not None:
        try:
            oracle_of(task.config)
        except TaskConfigError:
            return False
        return True
    return False  # real WebArena ships no solutions
