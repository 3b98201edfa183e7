"""The MiniWoB++ suite: BrowserGym's 125 tasks, one seeded episode each; success = the page's raw
reward > 0 (BrowserGym's rule; `MiniWoBTask` reports it as reward 1.0).

The oracle for the tasks a scripted player covers (miniwob_oracle.PLAYERS) plays the episode through
the same observations and action grammar an agent uses.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from envs.miniwob import MINIWOB_TASKS, TASK_ID_PREFIX, MiniWoBTask
from envs.suites.miniwob_oracle import PLAYERS
from envs.suites.oracle import OracleError

DEFAULT_SEED = 0
ORACLE_MAX_STEPS = 12  # the players finish every covered task in fewer; more means a player is stuck
ORACLE_TASKS: tuple[str, ...] = tuple(name for name in MINIWOB_TASKS if name in PLAYERS)


def suite_task_name(task_id: str) -> str:
    """The MiniWoB++ task a suite id names: 'click-test', 'miniwob.click-test' or
    'miniwob.click-test.seed3'. Raises ValueError, with close names, for anything else."""
    bare = task_id.removeprefix(TASK_ID_PREFIX)
    name, dot, seed = bare.rpartition(".seed")
    if dot and seed.isdigit():
        bare = name
    if bare not in MINIWOB_TASKS:
        close = difflib.get_close_matches(bare, MINIWOB_TASKS, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see envs.miniwob.MINIWOB_TASKS)"
        raise ValueError(f"unknown MiniWoB++ task {task_id!r}{hint}")
    return bare


def miniwob_suite(names: Iterable[str] | None = None, seed: int = DEFAULT_SEED) -> list[MiniWoBTask]:
    """One episode (with `seed`) of each named task, in the suite's order; all 125 when `names` is None."""
    if names is None:
        return [MiniWoBTask(name, seed=seed) for name in MINIWOB_TASKS]
    wanted = {suite_task_name(name) for name in names}
    return [MiniWoBTask(name, seed=seed) for name in MINIWOB_TASKS if name in wanted]


def has_oracle(task: MiniWoBTask) -> bool:
    return task.name in PLAYERS


async def run_miniwob_oracle(env: Any, task: MiniWoBTask,
                             max_steps: int = ORACLE_MAX_STEPS) -> tuple[float, dict[str, Any]]:
    """Reset `env` to `task` and let its scripted player act until the episode ends. Returns the reward
    (1.0 when raw reward > 0) and the last step's info with the executed actions (`info["actions"]`).
    A player that finds nothing to do, fails an action or does not finish raises OracleError."""
    if not has_oracle(task):
        raise OracleError(f"MiniWoB++ task {task.name} has no scripted player; "
                          f"those with one: {', '.join(ORACLE_TASKS)}")
    player = PLAYERS[task.name]
    obs, info = await env.reset(task)
    goal = info["goal"]
    actions: list[str] = []
    for _ in range(max_steps):
        try:
            action = player(goal, obs)
        except ValueError as exc:  # the goal is not worded as the player expects
            raise OracleError(f"task {task.id}: the player cannot read the goal {goal!r} ({exc})") from exc
        if action is None:
            raise OracleError(f"task {task.id}: the player found nothing to do on {obs.url} (goal {goal!r})")
        actions.append(action)
        obs, reward, done, _truncated, step_info = await env.step(action)
        if obs.last_action_error:
            raise OracleError(f"task {task.id}: action {action} failed: {obs.last_action_error}")
        if done:
            return float(reward), dict(step_info, actions=actions)
    raise OracleError(f"task {task.id}: the episode did not end after {max_steps} player actions {actions}")
