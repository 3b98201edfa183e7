"""Replaying a trace: its actions in a fresh browser (checking every state), or the whole agent
offline with the model's answers taken from the trace."""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.browser import BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from envs.types import Observation
from traces.schema import Trace, TraceError, build_task, fingerprint, fingerprint_lines, map_text, path_map, read_trace

DIFF_LINES = 60  # a divergence's diff is cut after this many lines


@dataclass
class Divergence:
    step: int  # 0: the start page; n: the state after the n-th action
    action: str | None
    diff: str  # readable: what the recorded state had and the replayed one has

    def describe(self) -> str:
        where = "the start page" if self.step == 0 else f"step {self.step}, after {self.action}"
        return f"diverged at {where}:\n{self.diff}"


@dataclass
class ReplayOutcome:
    trace_dir: Path
    checked: int  # states compared (the start page included)
    divergence: Divergence | None

    @property
    def matched(self) -> bool:
        return self.divergence is None


def compare_states(recorded: Observation, replayed: Observation, paths: list[tuple[str, str]]) -> str | None:
    """None when the two states are the same (URL and element-tree fingerprint), else a readable diff."""
    problems = []
    recorded_url = map_text(recorded.url, paths)
    if recorded_url != replayed.url:
        problems.append(f"URL: recorded {recorded_url}\n     replayed {replayed.url}")
    if fingerprint(recorded) != fingerprint(replayed):
        lines = list(difflib.unified_diff(fingerprint_lines(recorded), fingerprint_lines(replayed),
                                          "recorded", "replayed", n=2, lineterm=""))
        if len(lines) > DIFF_LINES:
            lines = lines[:DIFF_LINES] + [f"... ({len(lines) - DIFF_LINES} more diff lines)"]
        problems.append("element tree (fingerprint "
                        f"{fingerprint(recorded)} recorded, {fingerprint(replayed)} replayed):\n" + "\n".join(lines))
    return "\n".join(problems) or None


async def replay_actions(
    trace_dir: str | Path,
    browser: BrowserConfig | BrowserSession | None = None,
    on_step: Callable[[str], Any] = lambda line: None,
) -> ReplayOutcome:
    """Re-run the recorded actions from the recorded start; stop at the first state that differs."""
    trace = read_trace(trace_dir)
    paths = path_map(trace.task)
    task = build_task(trace.task["task"])
    shared = isinstance(browser, BrowserSession)
    env = BrowserEnv(browser)
    try:
        obs, _ = await env.reset(task)
        checked = 1
        diff = compare_states(trace.observation(0), obs, paths)
        if diff:
            return ReplayOutcome(trace.dir, checked, Divergence(0, None, diff))
        on_step("start page: same")
        for step in trace.executed_steps():
            action = map_text(step["choice"], paths)
            obs, *_ = await env.step(action)
            checked += 1
            diff = compare_states(trace.observation(step["after"]), obs, paths)
            if diff:
                return ReplayOutcome(trace.dir, checked, Divergence(step["step"], step["choice"], diff))
            on_step(f"step {step['step']}: {step['choice']}: same")
        return ReplayOutcome(trace.dir, checked, None)
    finally:
        if shared:
            if env.task is not None:
                await env.task.teardown()
            await env.session.close_context()
        else:
            await env.close()


def planner_config(trace: Trace) -> Any:
    """The planner settings a trace was recorded with."""
    from agent.config import PlannerConfig
    from agent.llm.budget import Budget

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
        elif isinstance(value, dict) and dataclasses.is_dataclass(current):
            value = type(current)(**value)
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
    from agent.llm.replayed import ReplayLLM
    from agent.loop import run_task

    trace = read_trace(trace_dir)
    task = build_task(trace.task["task"])
    models = {role: {"model": f"replay:{trace.dir}"} for role in ("policy", "world_model", "verifier")}
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
