"""Going on with a killed run: the graph's LangGraph checkpoints (task_dir/checkpoint.sqlite, kept
while a run is going) and its trace, cut back to the last step both of them finished."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph

from agent.llm.budget import CallRecord, UsageMeter
from agent.llm.protocol import LLM, InOrderLLM, Usage
from agent.state import STATE_TYPES, PlannerState
from envs.types import Env, Task
from traces.resume import cut_trace, read_progress
from traces.schema import Trace, TraceError

CHECKPOINT_FILE = "checkpoint.sqlite"  # LangGraph's checkpoints of a run in progress (removed when it ends)
THREAD = "run"  # one graph thread per task directory


@dataclass
class Resumed:
    """Where a killed run goes on from: its graph state after the last finished step, with the page
    rebuilt in a fresh browser by replaying the actions so far."""

    state: PlannerState
    thread: RunnableConfig  # the graph config to stream from (the checkpoint, updated with the new page)
    trace: Trace  # the trace as kept: up to that step
    replay_errors: list[str]
    seconds: float  # what the finished steps took


@asynccontextmanager
async def checkpointer(task_dir: Path, fresh: bool) -> AsyncIterator[AsyncSqliteSaver]:
    """The run's LangGraph checkpoints in task_dir/checkpoint.sqlite (a fresh run starts a new file)."""
    task_dir.mkdir(parents=True, exist_ok=True)
    path = task_dir / CHECKPOINT_FILE
    if fresh:
        path.unlink(missing_ok=True)
    async with aiosqlite.connect(path) as connection:
        yield AsyncSqliteSaver(connection, serde=JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES))


async def resume_run(graph: CompiledStateGraph, thread: RunnableConfig, task_dir: Path, env: Env, task: Task,
                     llm: LLM, meter: UsageMeter) -> Resumed | None:
    """Continue from the newest checkpoint taken between two steps that the trace also finished (a
    checkpoint can lag the trace by a step, and the trace the checkpoint): cut the trace back to
    it, count its calls again, let an in-order model (scripted) skip the answers they used, and
    replay its actions from the task's start in a fresh browser context. None when no step finished."""
    progress = read_progress(task_dir)
    if progress.ended:
        raise TraceError(f"the run in {task_dir} already finished ({progress.ended.get('stop_reason')}); "
                         "there is nothing to resume")
    snapshot = None
    async for candidate in graph.aget_state_history(thread):
        if candidate.next == ("observe",) and len(candidate.values.get("history", [])) <= progress.steps:
            snapshot = candidate
            break
    if snapshot is None:  # no step finished: the run starts over
        assert graph.checkpointer is not None and not isinstance(graph.checkpointer, bool)
        await graph.checkpointer.adelete_thread(THREAD)
        return None
    history = snapshot.values["history"]
    trace = cut_trace(task_dir, len(history))
    meter.calls[:] = [_call_record(call, trace.prompts) for call in trace.calls]
    if isinstance(llm, InOrderLLM):
        llm.skip_answered([(c.role, c.messages, c.n) for c in meter.calls])
    obs, _ = await env.reset(task)
    errors = []
    for action in history:
        obs, *_ = await env.step(action)
        if obs.last_action_error:
            errors.append(f"{action}: {obs.last_action_error}")
    update = {"observation": obs, "record": None}
    config = await graph.aupdate_state(snapshot.config, update, as_node="act")
    state = cast(PlannerState, {**snapshot.values, **update})
    return Resumed(state, {**thread, **config}, trace, errors, sum(step.get("seconds", 0) for step in trace.steps))


def _call_record(call: dict[str, Any], prompts: dict[str, list[dict[str, str]]]) -> CallRecord:
    usage = Usage(**{f.name: call["usage"].get(f.name, 0) for f in fields(Usage)})
    return CallRecord(role=call["role"], model=call.get("model", ""), messages=prompts[call["prompt_hash"]],
                      prompt_hash=call["prompt_hash"], answers=call["answers"], usage=usage,
                      started_at=call.get("started_at", 0.0), n=call.get("n", 1))
