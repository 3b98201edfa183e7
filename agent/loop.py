"""Running one task: reset the browser, run the planner graph to a stop, write what happened.

out_dir/<task-id>/trace.jsonl    every event of the run (traces/schema.py), flushed as it happens
out_dir/<task-id>/steps/NNN.png  screenshots, one per observation
out_dir/<task-id>/result.json    answer, stop reason, steps, tokens and cost per role, seconds, error
out_dir/<task-id>/steps.jsonl    one JSON line per step (the `step` events of the trace, briefly)
out_dir/<task-id>/checkpoint.sqlite  the graph's LangGraph checkpoints while the run is going (resume)
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph

from agent.config import PlannerConfig
from agent.graph import Parts, build_graph, step_record
from agent.llm.budget import BudgetExceeded, CallRecord, MeteredLLM, UsageMeter
from agent.llm.openai_client import EndpointUnreachable, LLMError
from agent.llm.protocol import LLM, Usage
from agent.llm.scripted import ScriptExhausted
from agent.state import (
    STATE_TYPES,
    STOP_BROWSER_CRASHED,
    STOP_BUDGET,
    STOP_ERROR,
    STOP_LLM_ERROR,
    PlannerState,
    StepRecord,
)
from agent.verifier import LLMVerifier
from envs.browser import BrowserCrashed
from envs.env import BrowserEnv
from envs.secrets import api_key_values
from envs.types import Task
from traces.recorder import TraceRecorder, plain_data
from traces.resume import cut_trace, read_progress
from traces.schema import Trace, TraceError, start_urls, task_spec
from world_model.world_model import LLMWorldModel, describe

STOP_INTERRUPTED = "interrupted"  # only in a trace's end event: the run was cut short (Ctrl-C, cancelled)
CHECKPOINT_FILE = "checkpoint.sqlite"  # LangGraph's checkpoints of a run in progress (removed when it ends)
THREAD = "run"  # one graph thread per task directory


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


async def run_task(
    task: Task, llm: LLM, env: BrowserEnv, config: PlannerConfig, out_dir: str | Path,
    on_step: Callable[[str], Any] = print, *, models: dict[str, Any] | None = None,
    screenshots: bool = True, secrets: Iterable[str] = (), resume: bool = False,
    before_close: Callable[[RunResult], Awaitable[Any]] | None = None,
) -> RunResult:
    """Run the planner on `task` until it stops; `on_step` gets a short text of each step.

    Everything is recorded in out_dir/<task-id>/ (traces/recorder.py): `models` names each role's
    model spec for the trace (never keys), `screenshots` keeps steps/NNN.png, `secrets` are masked
    in every file besides the passwords the agent types. The graph is checkpointed there too, so
    `resume` continues a killed run from its last finished step (see `_resume`). `before_close` gets
    the result while the page the run ended on is still open (a Playwright trace or HAR is finished,
    and masked, by closing its context)."""
    started = time.perf_counter()
    task_dir = Path(out_dir) / task.id
    meter = UsageMeter()
    metered = MeteredLLM(llm, meter, config.budget)
    # The env's secrets and any API key in the environment are masked too: none may reach the run dir.
    env_secrets = getattr(getattr(env, "secrets", None), "values", {})
    masked = [*secrets, *env_secrets.values(), *api_key_values()]
    state: PlannerState = {}
    stop_reason, detail, error, failure = STOP_ERROR, None, None, None
    seen: list[Any] = [None, -1]  # the observation last recorded, and its index
    async with checkpointer(task_dir, fresh=not resume) as saver:
        graph = build_graph(Parts(env, metered, LLMWorldModel(metered, config.observation_tokens),
                                  LLMVerifier(metered, config.samples), config), saver)
        thread = {"configurable": {"thread_id": THREAD}, "recursion_limit": _graph_steps(config)}
        resumed = await _resume(graph, thread, task_dir, env, task, llm, meter) if resume else None
        recorder = TraceRecorder(task_dir, screenshots=screenshots, secrets=masked,
                                 resumed=resumed.trace if resumed else None)

        async def record_state() -> int:
            if state["observation"] is not seen[0]:
                page = getattr(getattr(env, "session", None), "page", None)  # a stand-in env may have no browser
                seen[:] = [state["observation"], await recorder.observation(state["observation"], page)]
            return seen[1]

        async def write(record: StepRecord) -> None:
            before = seen[1]
            recorder.note_password_fills([*record.candidates, *(r["answer"] for r in record.rejected)], seen[0])
            recorder.calls(meter.calls, record.step)
            after = await record_state() if record.choice else None
            recorder.step(record.to_dict(), before, after)
            on_step(recorder.scrub(format_step(record)))

        try:
            try:
                if resumed:
                    state, stream_input, thread = resumed.state, None, resumed.thread
                    recorder.resume(len(state["history"]), resumed.replay_errors)
                else:
                    recorder.task(task, plain_data(config), models or {}, Path(out_dir).name, _start_urls(task))
                    obs, info = await env.reset(task)
                    state = {"goal": info["goal"], "observation": obs, "history": [], "parse_failures": 0, "reward": 0.0}
                    stream_input = state
                    recorder.start(info["goal"])
                await record_state()
                written = None
                async for state in graph.astream(stream_input, thread, stream_mode="values"):
                    if state.get("record") is not None and state["record"] is not written:
                        written = state["record"]
                        await write(written)
                stop_reason = state["stop_reason"]
            except Exception as exc:
                stop_reason, detail, error, failure = why_stopped(exc)
            if stop_reason in (STOP_BUDGET, STOP_LLM_ERROR, STOP_BROWSER_CRASHED, STOP_ERROR) and "observation" in state:
                await write(step_record(state, state.get("proposal"), stop_reason=stop_reason))  # the step it stopped in
            result = RunResult(
                task_id=task.id, goal=state.get("goal", ""), answer=state.get("answer"), stop_reason=stop_reason,
                steps=len(state.get("history", [])), reward=state.get("reward", 0.0),
                seconds=round(time.perf_counter() - started + (resumed.seconds if resumed else 0), 3),
                usage=meter.summary(), stop_detail=detail, error=recorder.scrub(error), strategy=config.strategy,
            )
            recorder.calls(meter.calls, len(state.get("history", [])) + 1)
            outcome = {**result.to_dict(), "blocked_urls": _blocked_urls(env)}
            recorder.end(outcome)
            recorder.write_result(outcome)
            if before_close is not None:
                await before_close(result)
            await _finish_browser_recordings(env, recorder)
        except BaseException as exc:  # interrupted (Ctrl-C, cancelled): say so after what is already recorded
            if not recorder.ended:
                recorder.calls(meter.calls, len(state.get("history", [])) + 1)
                recorder.end({"stop_reason": STOP_INTERRUPTED, "error": f"{type(exc).__name__}: {exc}",
                              "steps": len(state.get("history", [])), "usage": meter.summary(),
                              "seconds": round(time.perf_counter() - started, 3)})
            raise
        finally:
            recorder.close()
    (task_dir / CHECKPOINT_FILE).unlink(missing_ok=True)  # a finished run is not resumed; its state is in the trace
    if failure is not None:
        raise failure
    return result


def why_stopped(exc: Exception) -> tuple[str, str | None, str | None, Exception | None]:
    """(stop reason, detail, error, what to raise once it is recorded) for what cut a run short.
    A misconfigured endpoint and unknown errors (bugs) are raised again; the rest are outcomes."""
    if isinstance(exc, BudgetExceeded):
        return STOP_BUDGET, exc.reason, None, None
    if isinstance(exc, (LLMError, ScriptExhausted)):
        return STOP_LLM_ERROR, None, str(exc), exc if isinstance(exc, EndpointUnreachable) else None
    if isinstance(exc, BrowserCrashed):  # a crash the env could restart from is only an observation's error
        return STOP_BROWSER_CRASHED, None, str(exc), None
    return STOP_ERROR, None, f"{type(exc).__name__}: {exc}", exc


@dataclass
class Resumed:
    """Where a killed run goes on from: its graph state after the last finished step, with the page
    rebuilt in a fresh browser by replaying the actions so far."""

    state: PlannerState
    thread: dict[str, Any]  # the graph config to stream from (the checkpoint, updated with the new page)
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


async def _resume(graph: CompiledStateGraph, thread: dict[str, Any], task_dir: Path, env: BrowserEnv, task: Task,
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
        await graph.checkpointer.adelete_thread(THREAD)
        return None
    history = snapshot.values["history"]
    trace = cut_trace(task_dir, len(history))
    meter.calls[:] = [_call_record(call, trace.prompts) for call in trace.calls]
    if hasattr(llm, "skip_answered"):
        llm.skip_answered([(c.role, c.messages, c.n) for c in meter.calls])
    obs, _ = await env.reset(task)
    errors = []
    for action in history:
        obs, *_ = await env.step(action)
        if obs.last_action_error:
            errors.append(f"{action}: {obs.last_action_error}")
    update = {"observation": obs, "record": None}
    config = await graph.aupdate_state(snapshot.config, update, as_node="act")
    return Resumed({**snapshot.values, **update}, {**thread, **config}, trace, errors,
                   sum(step.get("seconds", 0) for step in trace.steps))


def _call_record(call: dict[str, Any], prompts: dict[str, list[dict[str, str]]]) -> CallRecord:
    usage = Usage(**{f.name: call["usage"].get(f.name, 0) for f in fields(Usage)})
    return CallRecord(role=call["role"], model=call.get("model", ""), messages=prompts[call["prompt_hash"]],
                      prompt_hash=call["prompt_hash"], answers=call["answers"], usage=usage,
                      started_at=call.get("started_at", 0.0), n=call.get("n", 1))


def _blocked_urls(env: BrowserEnv) -> list[str]:
    """Requests the origin guard kept from leaving the task's allowed origins (envs/guard.py)."""
    guard = getattr(env, "guard", None)
    return [blocked.url for blocked in guard.blocked] if guard is not None else []


def _start_urls(task: Task) -> list[str]:
    try:
        return start_urls(task_spec(task))
    except Exception as exc:  # a task that cannot be resolved here fails at reset with its own message
        return [f"(unresolved: {exc})"]


async def _finish_browser_recordings(env: BrowserEnv, recorder: TraceRecorder) -> None:
    """A Playwright trace.zip / network.har is complete only once its context closes; then mask secrets in it."""
    browser = getattr(getattr(env, "session", None), "config", None)
    if browser is not None and (browser.trace_path or browser.har_path):
        await env.session.close_context()
        recorder.scrub_files(p for p in (browser.trace_path, browser.har_path) if p)


def _graph_steps(config: PlannerConfig) -> int:
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
