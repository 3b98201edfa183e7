"""Replaying a trace's actions in a fresh browser, checking every state against the recorded one.
(Re-running the whole agent offline from a trace is agent/replay.py.)"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.browser import BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from envs.types import Observation
from traces.schema import build_task, fingerprint, fingerprint_lines, map_text, path_map, read_trace

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
