"""What `forethought mcp`'s tools do; agent/mcp_server.py serves them over MCP.

A session is one page opened in the guarded browser for the caller: it is observed, acted on, imagined
on and planned on, and every call is one `step` event of the session's trace (its `tool` field names
the call), in OUT/session-N/<task-id>/. Imagining and planning never run an action on the page (a
lookahead or tree strategy tries candidates in forked contexts, as in a run). `run_task` runs the agent
to the end in a browser of its own, recorded as `forethought run` records a run, in OUT/run-N/<task-id>/.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from agent.config import PlannerConfig
from agent.graph import Parts, build_graph
from agent.llm.budget import MeteredLLM, UsageMeter
from agent.llm.protocol import LLM
from agent.llm.settings import Settings
from agent.loop import RunResult, graph_steps, recorded_start_urls, run_task
from agent.provenance import describe_run, role_models, write_run_file
from agent.risk import preference_order
from agent.state import (
    STOP_BROWSER_CRASHED,
    STOP_ERROR,
    STOP_LLM_ERROR,
    STOP_UNPARSEABLE,
    PlannerState,
    StepRecord,
    step_record,
    summarize,
)
from agent.verifier import LLMVerifier
from envs.actions import ActionError, format_action, parse_action
from envs.browser import BrowserConfig
from envs.env import BrowserEnv, StartPageError
from envs.rendering import render_text
from envs.secrets import Masker, Secrets, api_key_values
from envs.types import PASSWORD_MASK, Observation, Task, first_line
from traces.recorder import TraceRecorder, plain_data
from traces.schema import fingerprint
from world_model.surprise import measure_surprise
from world_model.world_model import ImaginedStep, LLMWorldModel, describe

STOP_SESSION_ENDED = "session_ended"  # a session's end: another page was opened, or the server stopped
RUN_FAILURES = (STOP_LLM_ERROR, STOP_BROWSER_CRASHED, STOP_ERROR)  # run_task's that are the call's error


class CallRefused(Exception):
    """A call that cannot be done as asked; the message says why, in one sentence."""


@dataclass
class Setup:
    """What the command line decided, for every session and run the server holds."""

    llm: LLM
    settings: Settings
    config: PlannerConfig
    browser: BrowserConfig
    out: Path
    task_for: Callable[[str, str], Task]  # (url, goal) -> the task that opens it; ConfigError for a bad URL
    secrets: Secrets = field(default_factory=Secrets)
    allow_domains: list[str] = field(default_factory=list)
    allow_files: list[str] = field(default_factory=list)
    upload_dirs: list[str] = field(default_factory=list)
    screenshots: bool = True

    def browser_env(self) -> BrowserEnv:
        return BrowserEnv(self.browser, allow_domains=self.allow_domains, allow_files=self.allow_files,
                          secrets=self.secrets, upload_dirs=self.upload_dirs)

    def masked(self) -> list[str]:
        """What no file and no reply may show: the secrets, the models' credentials, API keys."""
        return [*self.secrets.values.values(), *self.settings.credentials(), *api_key_values()]

    def next_run_dir(self, kind: str, task: Task, chromium: str | None) -> Path:
        """OUT/<kind>-N, the first N not taken (a server started again on the same OUT keeps what the
        last one recorded), with its run.json."""
        number = 1
        while (self.out / f"{kind}-{number}").exists():
            number += 1
        run_dir = self.out / f"{kind}-{number}"
        write_run_file(run_dir, describe_run(
            "mcp", settings=self.settings, planner=self.config, strategies=[self.config.strategy], tasks=[task.id],
            seeds={"model": self.settings.seed, "task": getattr(task, "seed", None)}, chromium=chromium,
            tool="open" if kind == "session" else "run_task"))
        return run_dir


@dataclass
class Reply:
    text: str  # what the calling model reads
    data: dict[str, Any]  # the same as structured content, for programs


@dataclass
class Outcome:
    """What a session's call did: its reply, its step record, the observation after it (an action's),
    and the error it ended in (an action that failed: recorded, then told as the call's error)."""

    reply: Reply
    record: StepRecord
    after: int | None = None
    error: str | None = None


class Session:
    """One page opened for the caller: its goal, the actions run on it, its trace and its budget."""

    def __init__(self, setup: Setup, env: BrowserEnv, task: Task, url: str, task_dir: Path) -> None:
        self.setup, self.env, self.task, self.url = setup, env, task, url
        self.recorder = TraceRecorder(task_dir, screenshots=setup.screenshots, secrets=setup.masked())
        self.meter = UsageMeter()
        self.llm = MeteredLLM(setup.llm, self.meter, setup.config.budget)  # the CLI's budget, per session
        self.world_model = LLMWorldModel(self.llm, setup.config.observation_tokens)
        self.verifier = LLMVerifier(self.llm, setup.config.samples)
        self.started = time.perf_counter()
        self.goal = ""
        self.page: Observation | None = None
        self.page_index = -1
        self.history: list[str] = []  # the actions that ran
        self.visited: list[str] = []  # the URLs they ran on (adaptive's "is this page new?")
        self.last: dict[str, Any] = {}  # the last action's signals for adaptive: last_failed, last_surprise
        self.imagined: dict[str, list[ImaginedStep]] = {}  # action -> what was imagined of it on this page
        self.calls = 0
        self.answer: str | None = None
        self.reward = 0.0

    async def start(self) -> Reply:
        config = self.setup.config
        models = role_models(self.setup.settings)
        self.recorder.task(self.task, plain_data(config), models, self.recorder.dir.parent.name,
                           recorded_start_urls(self.task))
        try:
            obs, info = await self.env.reset(self.task)
        except StartPageError as exc:
            self.end(STOP_ERROR, error=str(exc))
            raise CallRefused(f"could not open {self.url}: {exc.reason}; check the URL and that its server is "
                              "running") from None
        self.goal = info["goal"]
        self.recorder.start(self.goal)
        await self.see(obs)
        return self.page_reply()

    # ------------------------------------------------------------------------------------ the calls

    async def observe(self) -> Reply:
        async def work(number: int) -> Outcome:
            await self.see(await self.env.observe())
            return Outcome(self.page_reply(), self.record(number))
        return await self.call("observe", work)

    async def act(self, action: str) -> Reply:
        async def work(number: int) -> Outcome:
            before = self.current()
            self.recorder.note_password_fills([action], before)
            obs, reward, done, _, info = await self.env.step(action)
            canonical = canonical_action(action)
            imagined = self.imagined.get(canonical or "")
            surprise = measure_surprise(canonical or action, imagined[0].prediction, before, obs) if imagined else None
            await self.see(obs, changed=True)
            error = info.get("action_error")
            if not error:
                self.history.append(canonical or action)
                self.visited.append(before.url)
            self.last = {"last_failed": bool(error), "last_surprise": surprise.score if surprise else None}
            self.reward = reward
            if info.get("answer") is not None:
                self.answer = info["answer"]
            record = self.record(number, candidates=[action], choice=action, execution_error=obs.last_action_error,
                                 imagined={action: imagined} if imagined else {}, surprise=surprise, reward=reward)
            return Outcome(self.act_reply(record, done, info), record, after=self.page_index,
                           error=f"{action} failed: {error}" if error else None)
        return await self.call("act", work)

    async def imagine(self, action: str, horizon: int | None = None) -> Reply:
        async def work(number: int) -> Outcome:
            if horizon is not None and horizon < 1:
                raise CallRefused(f"horizon is the number of imagined steps: 1 or more, not {horizon}")
            page = self.current()
            canonical = self.checked(action, page)
            depth = horizon or self.setup.config.horizon or 1
            steps = await self.world_model.imagine(self.goal, page, canonical, depth, history=self.history,
                                                   page_text=self.page_text())
            self.imagined[canonical] = steps
            lines = [f"imagined, not run (the page is unchanged): {canonical}"]
            lines += [imagined_line(i, s) for i, s in enumerate(steps, 1)]
            data = {"action": canonical, "imagined": [s.to_dict() for s in steps], "url": page.url}
            return Outcome(Reply("\n".join(lines), data), self.record(number, candidates=[canonical],
                                                                    imagined={canonical: steps}))
        return await self.call("imagine", work)

    async def plan_step(self) -> Reply:
        async def work(number: int) -> Outcome:
            if not self.goal:
                raise CallRefused("plan_step scores actions against the session's goal, and it has none: open the "
                                  "page again with a goal")
            config = self.setup.config
            graph = build_graph(Parts(self.env, self.llm, self.world_model, self.verifier, config))
            start = {"goal": self.goal, "observation": self.current(), "history": list(self.history),
                     "parse_failures": 0, "reward": self.reward, "visited": list(self.visited), **self.last}
            states = [values async for values in graph.astream(  # all a step does, but act
                start, {"recursion_limit": graph_steps(config)}, stream_mode="values", interrupt_before=["act"])]
            state = cast(PlannerState, states[-1])
            step = state["step"]
            record = dataclasses.replace(step_record(state, step), step=number)
            if state.get("stop_reason") == STOP_UNPARSEABLE:
                why = record.rejected[-1]["error"] if record.rejected else "no answer"
                return Outcome(Reply("", {}), record, error=f"the policy proposed no usable action in "
                                                             f"{config.parse_failure_limit} tries (the last: {why})")
            for action, imagined in record.imagined.items():
                self.imagined[action] = imagined
            return Outcome(self.plan_reply(record, step.choice), record)
        return await self.call("plan_step", work)

    # ------------------------------------------------------------------------------ replies, records

    def page_text(self) -> str:
        return render_text(self.current(), self.setup.config.observation_tokens)

    def page_data(self) -> dict[str, Any]:
        page = self.current()
        return {"url": page.url, "title": page.title, "goal": self.goal, "last_action_error": page.last_action_error}

    def page_reply(self) -> Reply:
        """The page as the agent sees it (what `forethought observe` prints)."""
        return Reply((f"Goal: {self.goal}\n" if self.goal else "") + self.page_text(),
                     self.page_data() | {"page": self.page_text()})

    def act_reply(self, record: StepRecord, done: bool, info: dict[str, Any]) -> Reply:
        """What an action did (its answer, blocked requests, surprise), then the page after it."""
        notes = [f"ran {record.choice}"]
        if info.get("answer") is not None:
            notes.append(f"answered {info['answer']!r}: the session's task is over (reward {record.reward:g})")
        elif done:
            notes.append(f"the task says it is over (reward {record.reward:g})")
        if info.get("blocked_urls"):
            notes.append("blocked (outside the session's allowed origins): " + ", ".join(info["blocked_urls"]))
        imagined = record.imagined.get(record.choice or "")
        if record.surprise is not None and imagined:
            notes.append(f"surprise {record.surprise.score:.2f}: imagined {describe(imagined[0].prediction)}")
        data = {"action": record.choice, "error": info.get("action_error"), "answer": info.get("answer"), "done": done,
                "reward": record.reward, "blocked_urls": info.get("blocked_urls") or [],
                "surprise": record.surprise.score if record.surprise else None, **self.page_data()}
        return Reply("\n".join(notes) + "\n\n" + self.page_reply().text, data)

    def plan_reply(self, record: StepRecord, choice: str | None) -> Reply:
        ranked = preference_order(record.candidates, record.scores, self.setup.config.overrule_margin)
        candidates = []
        strategy = self.setup.config.strategy
        how = strategy if record.mode in (None, strategy) else f"{strategy} ({record.mode} this step)"
        lines = [f"planned with {how}, nothing run; best first:"]
        for rank, action in enumerate(ranked, 1):
            score = record.scores.get(action)
            imagined = record.imagined.get(action) or []
            candidates.append({"action": action, "score": score.value if score else None,
                               "verdicts": score.reasons if score else [], "reason": record.reasons.get(action, ""),
                               "imagined": [s.to_dict() for s in imagined], "risky": record.risky.get(action)})
            shown = f"{score.value:4.2f}" if score else "   -"
            outcome = f"  -> {describe(imagined[0].prediction)}" if imagined else ""
            chosen = "  [the planner's choice]" if action == choice else ""
            lines.append(f"{rank}. {shown}  {action}{outcome}{chosen}")
        if record.gate:
            lines.append(f"risk gate: {record.gate}")
        data = {"strategy": self.setup.config.strategy, "mode": record.mode, "choice": choice,
                "candidates": candidates, "gate": record.gate, "url": self.current().url}
        return Reply("\n".join(lines), data)

    def record(self, number: int, **fields: Any) -> StepRecord:
        return StepRecord(step=number, observation=summarize(self.current()), **fields)

    def current(self) -> Observation:
        assert self.page is not None  # start() observed the page
        return self.page

    def checked(self, action: str, page: Observation) -> str:
        """`action` in its canonical form, once it parses and names elements of `page`."""
        try:
            parsed = parse_action(action)
            parsed.check_ids(page)
        except ActionError as exc:
            raise CallRefused(f"{action} is not an action on this page: {first_line(exc)}") from None
        return format_action(parsed)

    async def see(self, obs: Observation, changed: bool = False) -> None:
        """Make `obs` the session's page, recorded when it differs from the page last recorded (always
        after an action); what was imagined on the page before no longer applies."""
        if changed or self.page is None or fingerprint(obs) != fingerprint(self.page):
            self.page_index = await self.recorder.observation(obs, self.env.screenshot)
            self.imagined = {}
        self.page = obs

    async def call(self, tool: str, work: Callable[[int], Awaitable[Outcome]]) -> Reply:
        """Do one call as step N of the trace: its model calls, then its step (an error too), then raise
        the error it ended in, if any."""
        self.calls += 1
        before = self.page_index
        try:
            outcome = await work(self.calls)
        except Exception as exc:
            self.write(tool, self.record(self.calls), before, None, error=first_line(exc))
            raise
        self.write(tool, outcome.record, before, outcome.after, error=outcome.error)
        if outcome.error:
            raise CallRefused(outcome.error)
        return outcome.reply

    def write(self, tool: str, record: StepRecord, before: int, after: int | None, error: str | None) -> None:
        self.recorder.calls([c.to_dict() for c in self.meter.calls[self.recorder.calls_written:]], record.step)
        self.recorder.step(record.to_dict() | {"tool": tool, "error": error}, before, after)

    def end(self, stop_reason: str = STOP_SESSION_ENDED, error: str | None = None) -> None:
        """The session's end event and result.json (as a run's: its answer, actions, usage, blocked URLs)."""
        self.recorder.calls([c.to_dict() for c in self.meter.calls[self.recorder.calls_written:]], self.calls + 1)
        result = RunResult(task_id=self.task.id, goal=self.goal, answer=self.answer, stop_reason=stop_reason,
                           steps=len(self.history), reward=self.reward,
                           seconds=round(time.perf_counter() - self.started, 3), usage=self.meter.summary(),
                           error=error, strategy=self.setup.config.strategy)
        outcome = {**result.to_dict(), "blocked_urls": self.env.blocked_urls() if self.page else []}
        self.recorder.end(outcome)
        self.recorder.write_result(outcome)
        self.recorder.close()


class Tools:
    """The server's browser and its open session (one at a time), and runs of the agent."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.env = setup.browser_env()
        self.session: Session | None = None
        self.masker = Masker(url_mask=PASSWORD_MASK)
        for secret in setup.masked():
            self.masker.add(secret, PASSWORD_MASK)

    async def __aenter__(self) -> Tools:
        await self.env.__aenter__()  # a missing browser is told before the server starts
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            self.end_session()
        finally:
            await self.env.close()

    def end_session(self) -> None:
        if self.session is not None:
            self.session.end()
            self.session = None

    def open_session(self) -> Session:
        if self.session is None:
            raise CallRefused("no page is open: call open with a url (and a goal) first")
        return self.session

    async def open(self, url: str, goal: str = "") -> Reply:
        task = self.setup.task_for(url, goal)
        self.end_session()
        run_dir = self.setup.next_run_dir("session", task, self.env.session.browser.version)
        session = Session(self.setup, self.env, task, url, run_dir / task.id)
        reply = await session.start()  # CallRefused when the page cannot be opened (recorded)
        self.session = session
        return Reply(f"session {run_dir.name} recorded in {session.recorder.dir}\n" + reply.text,
                     reply.data | {"trace": str(session.recorder.dir)})

    async def run_task(self, goal: str, url: str | None = None) -> Reply:
        start = url or (self.session.url if self.session else None)
        if not start:
            raise CallRefused("run_task needs a url to start from: pass url, or open a page first")
        if not goal.strip() and not start.startswith("miniwob:"):  # a MiniWoB++ task brings its own
            raise CallRefused("run_task needs a goal: what should the agent do there?")
        task = self.setup.task_for(start, goal)
        async with self.setup.browser_env() as env:
            run_dir = self.setup.next_run_dir("run", task, env.session.browser.version)
            try:
                result = await run_task(task, self.setup.llm, env, self.setup.config, run_dir, on_step=to_stderr,
                                        models=role_models(self.setup.settings), screenshots=self.setup.screenshots,
                                        secrets=self.setup.settings.credentials())
            except StartPageError as exc:
                raise CallRefused(f"could not open {start}: {exc.reason}; check the URL and that its server is "
                                  "running") from None
        task_dir = run_dir / task.id
        if result.stop_reason in RUN_FAILURES:  # the model or the browser failed for good
            raise CallRefused(f"the run stopped with {result.stop_reason} after {result.steps} steps: {result.error}; "
                              f"its trace is in {task_dir}")
        outcome = f"answer {result.answer!r}" if result.answer is not None else "no answer"
        why = result.stop_detail or result.error
        total = result.usage["total"]
        text = (f"finished: {outcome}; stop reason {result.stop_reason}" + (f" ({why})" if why else "")
                + f"; reward {result.reward:g}; {result.steps} steps, {total['total_tokens']} tokens, "
                  f"${total['cost_usd']:.4f}, {result.seconds:.1f} s\ntrace: {task_dir}")
        return Reply(text, result.to_dict() | {"trace": str(task_dir)})

    def scrub(self, data: Any) -> Any:
        data = self.masker.mask_data(data)
        return self.session.recorder.scrub(data) if self.session else data  # the session's password fills too


def canonical_action(action: str) -> str | None:
    try:
        return format_action(parse_action(action))
    except ActionError:
        return None


def imagined_line(number: int, step: ImaginedStep) -> str:
    prediction = step.prediction
    line = f"{number}. {step.action} -> {describe(prediction)}"
    if prediction.appear:
        line += f"\n   appears: {'; '.join(prediction.appear)}"
    if prediction.disappear:
        line += f"\n   disappears: {'; '.join(prediction.disappear)}"
    return line + (f"\n   ({step.note})" if step.note else "")


def to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # stdout carries the MCP messages
