"""Re-running the agent offline from a trace: the recorded task and planner settings, every model
answer taken from the trace (agent/llm/replayed.py), and the actions compared with the recorded ones."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import PlannerConfig
from agent.llm.budget import Budget
from agent.llm.protocol import ROLES
from agent.llm.replayed import ReplayLLM
from agent.loop import run_task
from envs.browser import BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from traces.schema import Trace, TraceError, build_task, map_text, path_map, read_trace


def planner_config(trace: Trace) -> PlannerConfig:
    """The planner settings a trace was recorded with."""
    defaults = PlannerConfig()
    known = {f.name for f in dataclasses.fields(PlannerConfig)}
    settings: dict[str, Any] = {}
    for name, value in trace.task["config"].items():
        if name not in known:
            raise TraceError(f"{trace.dir}: the trace was recorded with planner setting {name!r}, "
                             "which this forethought does not have")
        current = getattr(defaults, name)
        if name == "budget" and isinstance(value, dict):
            value = Budget(**value)
        elif isinstance(value, dict) and hasattr(current, "model_validate"):
            value = type(current).model_validate(value)
        settings[name] = value
    return PlannerConfig(**settings)


@dataclass
class AgentReplayOutcome:
    recorded: list[str]  # the recorded run's executed actions
    replayed: list[str]
    recorded_stop: str | None
    replayed_stop: str
    out_dir: Path

    @property
    def matched(self) -> bool:
        return self.recorded == self.replayed and self.recorded_stop == self.replayed_stop

    def describe(self) -> str:
        if self.matched:
            return f"same {len(self.replayed)} actions and stop reason ({self.replayed_stop})"
        for index, (old, new) in enumerate(zip(self.recorded, self.replayed), 1):
            if old != new:
                return f"step {index}: recorded {old}, replayed {new}"
        if self.recorded != self.replayed:
            return (f"recorded {len(self.recorded)} actions, replayed {len(self.replayed)} "
                    f"(stop reasons: recorded {self.recorded_stop}, replayed {self.replayed_stop})")
        return f"stop reason: recorded {self.recorded_stop}, replayed {self.replayed_stop}"


async def replay_agent(
    trace_dir: str | Path,
    out_dir: str | Path,
    browser: BrowserConfig | BrowserSession | None = None,
    on_step: Callable[[str], Any] = lambda line: None,
) -> AgentReplayOutcome:
    """Run the agent again on the recorded task and settings, every answer from the trace; the new
    run is recorded under `out_dir`. Raises ReplayMismatch when it asks something the trace lacks."""
    trace = read_trace(trace_dir)
    task = build_task(trace.task["task"])
    models: dict[str, Any] = {role: {"model": f"replay:{trace.dir}"} for role in ROLES}
    shared = isinstance(browser, BrowserSession)
    env = BrowserEnv(browser)
    try:
        result = await run_task(task, ReplayLLM(trace), env, planner_config(trace), out_dir, on_step, models=models,
                                screenshots=False)
    finally:
        if shared:
            await env.session.close_context()
        else:
            await env.close()
    replayed = read_trace(Path(out_dir) / task.id)
    paths = path_map(trace.task)
    return AgentReplayOutcome(
        recorded=[map_text(s["choice"], paths) for s in trace.executed_steps()],
        replayed=[s["choice"] for s in replayed.executed_steps()],
        recorded_stop=trace.end.get("stop_reason") if trace.end else None,
        replayed_stop=result.stop_reason,
        out_dir=Path(out_dir) / task.id,
    )
