"""Running one task: reset the browser, run the planner graph to a stop, record what happened.

out_dir/<task-id>/trace.jsonl    every event of the run (traces/schema.py), flushed as it happens
out_dir/<task-id>/steps/NNN.png  screenshots, one per observation
out_dir/<task-id>/result.json    answer, stop reason, steps, tokens and cost per role, seconds, error
out_dir/<task-id>/steps.jsonl    one JSON line per step (the `step` events of the trace, briefly)
out_dir/<task-id>/checkpoint.sqlite  the graph's LangGraph checkpoints while the run is going (agent/resume.py)
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig

from agent.config import PlannerConfig
from agent.graph import Parts, build_graph
from agent.llm.budget import BudgetExceeded, MeteredLLM, UsageMeter
from agent.llm.openai_client import EndpointUnreachable, LLMError
from agent.llm.protocol import LLM
from agent.llm.scripted import ScriptExhausted
from agent.resume import CHECKPOINT_FILE, THREAD, Resumed, checkpointer, resume_run
from agent.state import (
    STOP_BROWSER_CRASHED,
    STOP_BUDGET,
    STOP_ERROR,
    STOP_LLM_ERROR,
    STOP_TIMEOUT,
    PlannerState,
    StepRecord,
    step_record,
)
from agent.verifier import LLMVerifier
from envs.browser import BrowserCrashed
from envs.secrets import api_key_values
from envs.types import Env, Observation, Task
from traces.recorder import TraceRecorder, plain_data
from traces.schema import start_urls, task_spec
from world_model.world_model import LLMWorldModel, describe

STOP_INTERRUPTED = "interrupted"  # only in a trace's end event: the run was cut short (Ctrl-C, cancelled)
# Stops that leave a step half done.
CUT_MID_STEP = (STOP_BUDGET, STOP_LLM_ERROR, STOP_BROWSER_CRASHED, STOP_TIMEOUT, STOP_ERROR)
T = TypeVar("T")


@dataclass
class RunResult:
    task_id: str
    goal: str
    answer: str | None
    stop_reason: str
    steps: int  # real actions executed
    reward: float
    seconds: float
    usage: dict[str, Any]  # UsageMeter.summary(): calls, total, by_role
    stop_detail: str | None = None  # e.g. which budget limit was hit
    error: str | None = None
    strategy: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = {"total": self.usage["total"]["total_tokens"],
                          **{role: u["total_tokens"] for role, u in self.usage["by_role"].items()}}
        data["cost_usd"] = {"total": self.usage["total"]["cost_usd"],
                            **{role: u["cost_usd"] for role, u in self.usage["by_role"].items()}}
        return data


@dataclass
class Stop:
    """Why a run ended; `failure` is raised once it is recorded (a misconfigured endpoint, a bug)."""

    reason: str
    detail: str | None = None
    error: str | None = None
    failure: Exception | None = None


async def run_task(
    task: Task, llm: LLM, env: Env, config: PlannerConfig, out_dir: str | Path,
    on_step: Callable[[str], Any] = print, *, models: dict[str, Any] | None = None,
    screenshots: bool = True, secrets: Iterable[str] = (), resume: bool = False,
    before_close: Callable[[RunResult], Awaitable[Any]] | None = None,
) -> RunResult:
    """Run the planner on `task` until it stops; `on_step` gets a short text of each step.

    Everything is recorded in out_dir/<task-id>/: `models` names each role's model spec for the trace
    (never keys), `screenshots` keeps steps/NNN.png, `secrets` (with the env's and any API key in the
    environment) are masked in every file. `resume` continues a killed run from its last finished step
    (agent/resume.py). `before_close` gets the result while the page the run ended on is still open."""
    started, task_dir = time.perf_counter(), Path(out_dir) / task.id
    meter = UsageMeter()
    metered = MeteredLLM(llm, meter, config.budget)
    parts = Parts(env, metered, LLMWorldModel(metered, config.observation_tokens), LLMVerifier(metered, config.samples),
                  config)
    async with checkpointer(task_dir, fresh=not resume) as saver:
        graph = build_graph(parts, saver)
        thread: RunnableConfig = {"configurable": {"thread_id": THREAD}, "recursion_limit": graph_steps(config)}
        resumed = await resume_run(graph, thread, task_dir, env, task, llm, meter) if resume else None
        masked = [*secrets, *env.secret_values(), *api_key_values()]
        async with Recording(task_dir, env, meter, on_step, screenshots, masked, resumed) as recording:
            if resumed:
                state, stream_input, thread = resumed.state, None, resumed.thread
                recording.recorder.resume(len(state["history"]), resumed.replay_errors)
            else:
                recording.recorder.task(task, plain_data(config), models or {}, Path(out_dir).name,
                                        recorded_start_urls(task))
                obs, info = await env.reset(task)
                state = {"goal": info["goal"], "observation": obs, "history": [], "parse_failures": 0, "reward": 0.0}
                stream_input = state
                recording.recorder.start(info["goal"])
            await recording.begin(state)
            spent = time.perf_counter() - started + (resumed.seconds if resumed else 0)  # counts towards the limit
            try:
                async for values in within_time(graph.astream(stream_input, thread, stream_mode="values"),
                                                config.timeout_s, spent):
                    state = cast(PlannerState, values)  # "values": the whole state after each node
                    await recording.step_of(state)
                stop = Stop(state["stop_reason"] or STOP_ERROR)
            except Exception as exc:
                stop = why_stopped(exc)
            if stop.reason in CUT_MID_STEP and "observation" in state:
                await recording.step(step_record(state, stop_reason=stop.reason))  # the step it stopped in
            seconds = time.perf_counter() - started + (resumed.seconds if resumed else 0)
            result = RunResult(
                task_id=task.id, goal=state.get("goal", ""), answer=state.get("answer"), stop_reason=stop.reason,
                steps=len(state.get("history", [])), reward=state.get("reward", 0.0), seconds=round(seconds, 3),
                usage=meter.summary(), stop_detail=stop.detail, error=recording.recorder.scrub(stop.error),
                strategy=config.strategy)
            recording.end(result)
            if before_close is not None:
                await before_close(result)
            recording.recorder.scrub_files(await env.finish_recordings())  # complete once the context closed
    (task_dir / CHECKPOINT_FILE).unlink(missing_ok=True)  # a finished run is not resumed; its state is in the trace
    if stop.failure is not None:
        raise stop.failure
    return result


def why_stopped(exc: Exception) -> Stop:
    """What cut a run short. A misconfigured endpoint and unknown errors (bugs) are raised again once
    recorded; the rest are outcomes."""
    if isinstance(exc, BudgetExceeded):
        return Stop(STOP_BUDGET, detail=exc.reason)
    if isinstance(exc, RunTimedOut):
        return Stop(STOP_TIMEOUT, detail=str(exc))
    if isinstance(exc, (LLMError, ScriptExhausted)):
        return Stop(STOP_LLM_ERROR, error=str(exc), failure=exc if isinstance(exc, EndpointUnreachable) else None)
    if isinstance(exc, BrowserCrashed):  # a crash the env could restart from is only an observation's error
        return Stop(STOP_BROWSER_CRASHED, error=str(exc))
    return Stop(STOP_ERROR, error=f"{type(exc).__name__}: {exc}", failure=exc)


class RunTimedOut(Exception):
    """The run's wall-clock limit was reached; the graph was stopped wherever it was."""


async def within_time(stream: AsyncIterator[T], timeout_s: float | None, spent: float = 0.0) -> AsyncIterator[T]:
    """`stream`'s items until it ends, or RunTimedOut once `timeout_s` less `spent` seconds are over. The
    limit stops the stream (a model call, a page that never answers, a long wait), never the caller's
    work on an item, so what is recorded of each step is recorded whole."""
    deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s - spent
    while True:
        try:
            async with asyncio.timeout_at(deadline) as limit:
                item = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if limit.expired():
                raise RunTimedOut(f"the run's time limit of {timeout_s:g} s was reached") from None
            raise
        yield item


class Recording:
    """One run recorded as it goes (traces/recorder.py): each new page once, each step with the calls
    it made, the end. As an async context manager it ends a run that was cut short (Ctrl-C, cancelled)
    with an `interrupted` event after what is already recorded."""

    def __init__(self, task_dir: Path, env: Env, meter: UsageMeter, on_step: Callable[[str], Any],
                 screenshots: bool, secrets: list[str], resumed: Resumed | None) -> None:
        self.recorder = TraceRecorder(task_dir, screenshots=screenshots, secrets=secrets,
                                      resumed=resumed.trace if resumed else None)
        self.env, self.meter, self.on_step = env, meter, on_step
        self.started = time.perf_counter()
        self.page: tuple[Observation | None, int] = (None, -1)  # the observation last recorded, and its index
        self.written: StepRecord | None = None
        self.steps = 0

    async def observation(self, obs: Observation) -> int:
        if obs is not self.page[0]:
            self.page = (obs, await self.recorder.observation(obs, self.env.screenshot))
        return self.page[1]

    async def begin(self, state: PlannerState) -> None:
        """The page the run starts (or resumes) from."""
        self.steps = len(state["history"])
        await self.observation(state["observation"])

    async def step_of(self, state: PlannerState) -> None:
        """Record the step a graph state has just finished, if it has finished a new one."""
        self.steps = len(state.get("history", []))
        record = state.get("record")
        if record is not None and record is not self.written:
            self.written = record
            await self.step(record, state["observation"])

    async def step(self, record: StepRecord, after: Observation | None = None) -> None:
        before, page = self.page[1], self.page[0]
        assert page is not None  # the start page is recorded before any step
        self.recorder.note_password_fills([*record.candidates, *(r["answer"] for r in record.rejected)], page)
        self.write_calls(record.step)
        after_index = await self.observation(after) if record.choice and after is not None else None
        self.recorder.step(record.to_dict(), before, after_index)
        self.on_step(self.recorder.scrub(format_step(record)))

    def write_calls(self, step: int) -> None:
        unwritten = self.meter.calls[self.recorder.calls_written:]
        self.recorder.calls([call.to_dict() for call in unwritten], step)

    def end(self, result: RunResult) -> None:
        self.write_calls(result.steps + 1)
        outcome = {**result.to_dict(), "blocked_urls": self.env.blocked_urls()}
        self.recorder.end(outcome)
        self.recorder.write_result(outcome)

    async def __aenter__(self) -> Recording:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        try:
            if exc is not None and not self.recorder.ended:
                self.write_calls(self.steps + 1)
                self.recorder.end({"stop_reason": STOP_INTERRUPTED, "error": f"{type(exc).__name__}: {exc}",
                                   "steps": self.steps, "usage": self.meter.summary(),
                                   "seconds": round(time.perf_counter() - self.started, 3)})
        finally:
            self.recorder.close()


def recorded_start_urls(task: Task) -> list[str]:
    try:
        return start_urls(task_spec(task))
    except Exception as exc:  # a task that cannot be resolved here fails at reset with its own message
        return [f"(unresolved: {exc})"]


def graph_steps(config: PlannerConfig) -> int:
    # LangGraph counts node runs: up to nine per real step (adaptive escalating), plus retried proposals.
    return config.max_steps * (9 + config.parse_failure_limit) + 10


def format_step(record: StepRecord) -> str:
    """A few lines for people: each candidate with its imagined outcome and score, then the choice."""
    mode = f"  [{record.mode}]" if record.mode else ""
    lines = [f"step {record.step}{mode}  {record.observation['url']}"]
    if record.adaptive:
        lines.append(f"  adaptive: {_clip(str(record.adaptive[-1].get('why', '')), 100)}")
    for action in record.candidates:
        score = record.scores.get(action)
        imagined = record.imagined.get(action)
        outcome = f"  -> {_clip(describe(imagined[0].prediction), 80)}" if imagined else ""
        lines.append(f"  {score.value:4.2f}  {action}{outcome}" if score else f"     -  {action}{outcome}")
    for rejected in record.rejected[:3]:
        lines.append(f"  unusable: {_clip(rejected['answer'], 50)} ({_clip(rejected['error'], 70)})")
    if record.choice:
        line = f"  chose {record.choice}"
        if record.execution_error:
            line += f"  (failed: {_clip(record.execution_error, 80)})"
        if record.surprise is not None:
            line += f"  surprise {record.surprise.score:.2f}"
        lines.append(line)
    if record.gate:
        lines.append(f"  risk gate: {_clip(record.gate, 100)}")
    if record.stop_reason:
        lines.append(f"  stopped: {record.stop_reason}")
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
