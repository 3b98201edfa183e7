"""`forethought eval`'s engine: a suite's tasks run by parallel workers, scored, and summarised.

Each worker owns a browser and, for the local suite, its own servers of the local sites, which are
reset to pristine data before every task: no task sees another's changes, whichever worker runs it.

On disk (OUT = EvalOptions.out):
    OUT/run.json                          how it was made (agent/provenance.py): suite, agent, strategies,
                                          tasks, models, planner settings, seeds, versions, and each resume
    OUT/results.jsonl                     one line per finished task, appended as tasks finish
    OUT/summary.json, OUT/summary.csv     per strategy: success rate ± standard error, compute, errors
    OUT/<strategy>/<task-id>/result.json, steps.jsonl, agent_response.json, network.har

A task ends as a success, a failure (the agent got it wrong) or an error (timeout, harness or LLM
trouble): errors are counted apart and do not enter the success rate. Resuming re-runs only the
tasks without a finished (success or failure) result.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from agent.config import ROLES_USED, STRATEGIES, PlannerConfig
from agent.evaluation.frontier import write_frontier
from agent.evaluation.judge import LLMJudge
from agent.evaluation.suites import EvalError, SuiteTask, has_oracle, id_range
from agent.evaluation.summary import ERROR, FAILURE, SUCCESS, Progress, read_records, summarize, write_summary
from agent.llm.settings import ConfigError, RoutedLLM, Settings, build_llm, without_credentials
from agent.loop import run_task
from agent.provenance import (
    chromium_version,
    clear_run,
    describe_run,
    note_resume,
    resume_note,
    role_models,
    used_out_refusal,
    write_run_file,
)
from agent.resume import CHECKPOINT_FILE
from agent.state import STOP_ERROR, STOP_LLM_ERROR, STOP_TIMEOUT
from envs.browser import BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from envs.miniwob import MiniWoBTask
from envs.suites.local import LocalSites, oracle_of
from envs.suites.miniwob import run_miniwob_oracle
from envs.suites.oracle import run_oracle
from envs.types import first_line
from envs.webarena.evaluators import JudgeRequiredError
from envs.webarena.task import WebArenaTask
from envs.webarena.verified import infer_task_type, write_agent_response

AGENTS = ("planner", "oracle")
BACKENDS = ("local", "ray")
ORACLE = "oracle"  # the strategy column of oracle runs
DEFAULT_TASK_TIMEOUT_S = 600.0
# The planner's own run stops at the task timeout and records why (stop reason timeout); this much more
# lets it score the page and close the context before the runner cuts the task off itself.
CLOSING_GRACE_S = 60.0
UNSCORED = (STOP_ERROR, STOP_LLM_ERROR, STOP_TIMEOUT)  # stop reasons that make a task an error, not scored


# ------------------------------------------------------------------------------------------ options


@dataclass
class EvalOptions:
    suite: str
    out: Path
    agent: str = "planner"
    strategies: tuple[str, ...] = ("dreamer",)
    workers: int = 1
    task_timeout: float | None = DEFAULT_TASK_TIMEOUT_S
    resume: bool = False
    overwrite: bool = False  # replace the run `out` holds (else a used `out` is refused unless resuming)
    seed: int = 0  # of the task sample and MiniWoB++ episodes, as chosen (recorded in run.json)
    settings: Settings | None = None  # models for the planner (and the judge)
    judge_model: str | None = None  # model spec of the fuzzy_match judge; default: the verifier's model
    planner: PlannerConfig = field(default_factory=PlannerConfig)  # strategy is set per run
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    auth_dir: Path | None = None  # where WebArena's relative storage_state files are
    screenshots: bool = True  # the agent loop keeps steps/NNN.png
    allow_domains: tuple[str, ...] = ()  # reachable besides each task's own origins (envs/guard.py)
    allow_files: tuple[str, ...] = ()  # local files and folders readable besides a file task's own folder
    progress: TextIO | None = field(default_factory=lambda: sys.stderr)
    backend: str = "local"  # where workers run: here (asyncio) or as Ray actors (agent/evaluation/ray_backend.py)
    ray_address: str | None = None  # a Ray cluster to join; default: $RAY_ADDRESS, else a Ray started here

    def __post_init__(self) -> None:
        if self.agent not in AGENTS:
            raise EvalError(f"unknown agent {self.agent!r}; choose one of {', '.join(AGENTS)}")
        if self.backend not in BACKENDS:
            raise EvalError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.workers < 1:
            raise EvalError(f"--workers must be at least 1, got {self.workers}")
        if self.resume and self.overwrite:
            raise EvalError("pass either --resume (go on with the run in --out) or --overwrite (replace it), not both")
        if self.task_timeout is not None and self.task_timeout <= 0:
            raise EvalError(f"--task-timeout must be positive, got {self.task_timeout}")
        if self.agent == ORACLE:
            self.strategies = (ORACLE,)
        if not self.strategies:
            raise EvalError("give at least one strategy")
        for strategy in self.strategies:
            if strategy != ORACLE and strategy not in STRATEGIES:
                raise EvalError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
        if len(set(self.strategies)) != len(self.strategies):
            raise EvalError(f"a strategy is given twice: {','.join(self.strategies)}")
        for path in self.allow_files:
            if not Path(path).expanduser().exists():
                raise EvalError(f"--allow-file {path}: no such file or folder")
        self.out = Path(self.out)


# ------------------------------------------------------------------------------------------ worker

class Worker:
    """One browser and, for WebArena-format local tasks, its own LocalSites. Runs one task at a time."""

    def __init__(self, index: int, options: EvalOptions, sites: tuple[str, ...]) -> None:
        self.index = index
        self.options = options
        self.site_names = sites
        self.browser_config = replace(options.browser)  # har_path is set per task
        self.env = BrowserEnv(BrowserSession(self.browser_config))
        self.sites: LocalSites | None = None

    async def start(self) -> Worker:
        if self.site_names:
            self.sites = await asyncio.to_thread(LocalSites(self.site_names).start)
        await self.env.session.start()
        return self

    async def close(self) -> None:
        try:
            await self.env.close()
        finally:
            if self.sites is not None:
                await asyncio.to_thread(self.sites.stop)

    async def run(self, strategy: str, task: SuiteTask) -> dict[str, Any]:
        """Run one task to a record; never raises for a task's own trouble (that is an error record)."""
        task_dir = self.options.out / strategy / task.id
        task_dir.mkdir(parents=True, exist_ok=True)
        (task_dir / "result.json").unlink(missing_ok=True)  # an earlier attempt's, when resuming
        self.browser_config.har_path = str(task_dir / "network.har")
        judge_llm = self._judge_llm()  # closed when the task is over
        judge = LLMJudge(judge_llm) if judge_llm is not None else None
        attempt = _Attempt()
        # A local task may move between the local sites; each site's origin is the task's own.
        site_urls = list(self.sites.site_urls.values()) if self.sites is not None else []
        self.env.allow_domains = [*self.options.allow_domains, *site_urls]
        self.env.allow_files = list(self.options.allow_files)
        started = time.perf_counter()
        limit = self.options.task_timeout
        try:
            await asyncio.wait_for(self._attempt(strategy, task, task_dir, judge, attempt),
                                   limit if limit is None or strategy == ORACLE else limit + CLOSING_GRACE_S)
        except TimeoutError:
            attempt.error = f"timed out after {self.options.task_timeout:g} s"
        except ConfigError:
            raise  # the models' or the eval's configuration: every task would fail alike (see stop_on_config_error)
        except Exception as exc:
            attempt.error = _describe_error(exc)
        finally:
            try:
                await self.env.session.close_context()  # writes network.har
            except Exception as exc:
                attempt.error = attempt.error or f"closing the browser context failed: {_describe_error(exc)}"
            if judge_llm is not None:
                await judge_llm.aclose()
        if attempt.error and not self.env.session.browser.is_connected():
            await self._restart_browser()  # a crashed browser must not fail every later task too
        seconds = round(time.perf_counter() - started, 3)
        record = attempt.record(strategy, task, seconds, judge, self.index)
        write_task_files(task, task_dir, attempt, record)
        return record

    def _local_sites(self) -> LocalSites:
        assert self.sites is not None, "a local task runs on a worker started with its sites"
        return self.sites

    async def _restart_browser(self) -> None:
        try:
            await self.env.close()
        except Exception:
            pass  # the browser is gone already; what matters is the new one below
        self.env = BrowserEnv(BrowserSession(self.browser_config))
        await self.env.session.start()

    def _judge_llm(self) -> RoutedLLM | None:
        settings, spec = self.options.settings, self.options.judge_model
        if settings is None:
            return None
        if spec:
            settings = settings.with_overrides(verifier_model=spec)
        if not settings.role("verifier").model:
            return None
        return build_llm(settings, ("verifier",))

    async def _attempt(self, strategy: str, task: SuiteTask, task_dir: Path, judge: LLMJudge | None,
                       attempt: _Attempt) -> None:
        env_task = self._env_task(task, judge)
        attempt.env_task = env_task
        try:
            if strategy == ORACLE:
                await self._run_oracle(task, env_task, attempt)
            else:
                await self._run_planner(strategy, task, env_task, attempt)
        except JudgeRequiredError as exc:
            raise EvalError(f"task {task.id} is graded by fuzzy_match, which needs an LLM judge: "
                            "pass --judge-model SPEC (or --model SPEC)") from exc

    def _env_task(self, task: SuiteTask, judge: LLMJudge | None) -> Any:
        if task.suite == "miniwob":
            return MiniWoBTask(task.miniwob_name or "", seed=task.seed)
        assert task.config is not None
        if task.suite == "local":
            sites = self._local_sites()
            return sites.task(task.config.with_site_urls(sites.site_urls, use_env=False), judge=judge)
        return WebArenaTask(task.config, judge=judge, auth_dir=self.options.auth_dir)

    async def _run_oracle(self, task: SuiteTask, env_task: Any, attempt: _Attempt) -> None:
        if task.suite == "miniwob":
            score, info = await run_miniwob_oracle(self.env, env_task)
        else:
            assert task.config is not None
            actions = oracle_of(task.config, self._local_sites().site_urls).actions
            score, info = await run_oracle(self.env, env_task, actions)
        attempt.score, attempt.answer = score, self.env.answer
        attempt.steps = len(info.get("actions", []))
        attempt.stop_reason = "oracle"

    async def _run_planner(self, strategy: str, task: SuiteTask, env_task: Any, attempt: _Attempt) -> None:
        settings = self.options.settings
        assert settings is not None
        models = role_models(settings)
        # A fresh client per task: a scripted model then answers each task the same way, whichever
        # worker runs it and whatever ran before.
        llm = build_llm(settings, ROLES_USED[strategy])
        try:
            config = replace(self.options.planner, strategy=strategy, timeout_s=self.options.task_timeout)
            out = self.options.out / strategy
            # A task killed mid-run left its checkpoint: --resume goes on from its last finished step.
            resume = self.options.resume and (out / task.id / CHECKPOINT_FILE).is_file()
            result = await run_task(env_task, llm, self.env, config, out, on_step=lambda text: None, models=models,
                                    screenshots=self.options.screenshots, resume=resume, secrets=settings.credentials(),
                                    before_close=lambda result: self._score(task, env_task, result, attempt))
        finally:
            await llm.aclose()
        attempt.planner_result = result
        attempt.answer, attempt.steps = result.answer, result.steps
        attempt.stop_reason = result.stop_reason
        attempt.tokens = result.usage["total"]["total_tokens"]
        attempt.calls = result.usage["calls"]
        attempt.cost_usd = result.usage["total"]["cost_usd"]
        if result.stop_reason == STOP_TIMEOUT:
            attempt.error = f"timed out after {self.options.task_timeout:g} s"
        elif result.stop_reason in UNSCORED:
            attempt.error = result.error or result.stop_reason

    async def _score(self, task: SuiteTask, env_task: Any, result: Any, attempt: _Attempt) -> None:
        """The run's score, on the page it ended on (still open: the loop calls this before closing it)."""
        attempt.score = result.reward
        if result.stop_reason not in UNSCORED and task.config is not None and result.answer is None:
            # WebArena scores a run cut short as if it stopped with "Early stop: <why>" (its run.py).
            attempt.score, _done, _info = await env_task.validate(self.env.session.page,
                                                                  f"Early stop: {result.stop_reason}")

@dataclass
class _Attempt:
    """What one task run produced, filled in as far as it got."""

    score: float = 0.0
    answer: str | None = None
    steps: int = 0
    stop_reason: str = ""
    tokens: int = 0
    calls: int = 0  # LLM calls the agent made (the judge's apart)
    cost_usd: float = 0.0
    error: str | None = None
    env_task: Any = None
    planner_result: Any = None

    def record(self, strategy: str, task: SuiteTask, seconds: float, judge: LLMJudge | None,
               worker: int) -> dict[str, Any]:
        status = ERROR if self.error else SUCCESS if self.score > 0 else FAILURE
        return {
            "task_id": task.id, "suite": task.suite, "strategy": strategy, "status": status,
            "success": status == SUCCESS, "score": self.score, "answer": self.answer, "steps": self.steps,
            "stop_reason": self.stop_reason or (ERROR if self.error else ""), "tokens": self.tokens,
            "calls": self.calls, "cost_usd": round(self.cost_usd, 6),
            "judge_tokens": judge.usage.total_tokens if judge else 0,
            "seconds": seconds, "error": self.error, "worker": worker,
        }


def write_task_files(task: SuiteTask, task_dir: Path, attempt: _Attempt, record: dict[str, Any]) -> None:
    if task.config is not None:
        write_agent_response(task_dir, attempt.answer, infer_task_type(task.config))
    result_path = task_dir / "result.json"
    # The agent loop writes its own record there (also when it fails); the runner's is added to it.
    data = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else {}
    data.update(record)
    evaluation = getattr(attempt.env_task, "last_evaluation", None)
    if evaluation is not None:
        data["evaluation"] = evaluation.to_dict()
    result_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def error_record(strategy: str, task: SuiteTask, task_dir: Path, error: str, seconds: float,
                 worker: int) -> dict[str, Any]:
    """The record (and result.json) of a task whose worker never returned one."""
    task_dir.mkdir(parents=True, exist_ok=True)
    attempt = _Attempt(error=error)
    record = attempt.record(strategy, task, round(seconds, 3), None, worker)
    write_task_files(task, task_dir, attempt, record)
    return record


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return first if isinstance(exc, EvalError) else f"{type(exc).__name__}: {first}".rstrip(": ")


# ------------------------------------------------------------------------------------------ running


async def run_eval(options: EvalOptions, tasks: list[SuiteTask]) -> dict[str, Any]:
    """Run every (strategy, task) not finished yet on `options.workers` workers; returns the summary
    (also written to summary.json and summary.csv)."""
    refusal = None if options.resume or options.overwrite else used_out_refusal(options.out, "--resume")
    if refusal:  # before the models load: a used --out is the likelier mistake
        raise EvalError(refusal)
    await check_models(options)
    if options.backend == "ray":
        from agent.evaluation.ray_backend import import_ray

        import_ray()  # missing Ray is a user error, found before anything is written
    skipped: list[str] = []
    if options.agent == ORACLE:
        runnable = [t for t in tasks if has_oracle(t)]
        skipped = [t.id for t in tasks if t not in runnable]
        if not runnable:
            raise EvalError(f"none of the {len(tasks)} selected {tasks[0].suite if tasks else ''} tasks has an oracle "
                            "solution; run them with --agent planner")
        tasks = runnable
    if not tasks:
        raise EvalError("no tasks selected")
    out = options.out
    results_path = out / "results.jsonl"
    plan = {"suite": tasks[0].suite, "agent": options.agent, "strategies": list(options.strategies),
            "tasks": [t.id for t in tasks], "skipped_without_oracle": skipped}
    previous, made = _prepare_out_dir(options, plan)
    done = {(r["strategy"], r["task_id"]) for r in previous if r.get("status") in (SUCCESS, FAILURE)}
    jobs = [(s, t) for s in options.strategies for t in tasks if (s, t.id) not in done]
    progress = Progress(len(jobs), options.progress, already=len(done)) if options.progress else None
    if skipped and options.progress:
        print(f"note: {len(skipped)} task(s) have no oracle solution and are skipped: {id_range(skipped)}",
              file=options.progress)
    records = list(previous)
    if jobs:
        with open(results_path, "a", encoding="utf-8") as results_file:
            def finished(record: dict[str, Any]) -> None:
                results_file.write(json.dumps(record, ensure_ascii=False) + "\n")
                results_file.flush()  # a run cut short keeps every finished task
                records.append(record)
                if progress:
                    progress.update(record)

            sites = tuple(sorted({s for t in tasks for s in t.sites})) if tasks[0].suite == "local" else ()
            await _run_jobs(jobs, options, sites, finished)
        if progress:
            progress.finish()
    summary = summarize(records, plan, made)
    write_summary(out, summary)
    if len(options.strategies) > 1:
        files = await write_frontier(out, summary, options.browser)
        summary["frontier"] = {"csv": str(files.csv), "svg": str(files.svg),
                               "png": str(files.png) if files.png else None, "note": files.note,
                               "fronts": files.fronts}
        write_summary(out, summary)  # again, now naming the frontier files
    return summary


async def check_models(options: EvalOptions) -> None:
    """Fail once, before any task runs, on a model that is missing or misnamed."""
    settings = options.settings
    if settings is None:
        if options.agent == "planner":
            raise EvalError("the planner agent needs models: pass settings (--model SPEC)")
        return  # the oracle without a judge calls no model
    try:
        if options.agent == "planner":
            for strategy in options.strategies:
                await build_llm(settings, ROLES_USED[strategy]).aclose()
        if options.judge_model:
            await build_llm(settings.with_overrides(verifier_model=options.judge_model), ("verifier",)).aclose()
    except ConfigError as exc:
        raise EvalError(str(exc)) from None


async def _run_jobs(jobs: list[tuple[str, SuiteTask]], options: EvalOptions, sites: tuple[str, ...],
                    finished: Callable[[dict[str, Any]], None]) -> None:
    if options.backend == "ray":
        from agent.evaluation import ray_backend  # Ray is an optional extra, imported only when asked for

        return await ray_backend.run_jobs(jobs, options, sites, finished)
    queue: asyncio.Queue[tuple[str, SuiteTask]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    workers = [Worker(i, options, sites) for i in range(min(options.workers, len(jobs)))]
    started = await asyncio.gather(*(w.start() for w in workers), return_exceptions=True)
    try:
        failed = [r for r in started if isinstance(r, BaseException)]
        if failed:
            raise failed[0]

        stop: list[ConfigError] = []

        async def work(worker: Worker) -> None:
            while not queue.empty() and not stop:
                strategy, task = queue.get_nowait()
                try:
                    finished(await worker.run(strategy, task))
                except ConfigError as exc:
                    stop.append(exc)

        await asyncio.gather(*(work(w) for w in workers))
        stop_on_config_error(stop)
    finally:
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)


def stop_on_config_error(errors: list[ConfigError]) -> None:
    """A configuration error in a task (a rejected API key, a model that takes no images) stops the eval
    as one user error: the tasks in flight finish, no other starts, and --resume goes on once it is fixed."""
    if errors:
        raise EvalError(f"{first_line(errors[0])}; the eval stopped there: fix that, then go on with --resume")


def _prepare_out_dir(options: EvalOptions, plan: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records of an earlier run to resume (or none), and run.json as now written; refuses to mix runs."""
    out = options.out
    run_file, results_path = out / "run.json", out / "results.jsonl"
    if options.resume:
        if not run_file.is_file():
            raise EvalError(f"nothing to resume in {out}: it holds no run.json of an earlier eval")
        earlier = json.loads(run_file.read_text(encoding="utf-8"))
        for key in ("suite", "agent"):
            if earlier.get(key) != plan[key]:
                raise EvalError(f"{out} holds a run with {key} {earlier.get(key)!r}, not {plan[key]!r}; "
                                "resume it with the same options, or choose another --out")
        wanted = {(s, t) for s in plan["strategies"] for t in plan["tasks"]}
        made = note_resume(out, resume_note(options.settings, _planner(options), backend=_backend(options)))
        return [r for r in read_records(results_path) if (r["strategy"], r["task_id"]) in wanted], made
    if options.overwrite:
        clear_run(out)
    made = plan | describe_run(
        "eval", settings=options.settings, planner=_planner(options), strategies=plan["strategies"],
        tasks=plan["tasks"],
        seeds={"suite": options.seed, "model": options.settings.seed if options.settings else None},
        chromium=chromium_version(options.browser), backend=_backend(options), judge_model=options.judge_model,
        task_timeout=options.task_timeout)
    write_run_file(out, made)
    return [], made


def _backend(options: EvalOptions) -> dict[str, Any]:
    """Where the tasks ran; a Ray cluster by its address (None: a Ray instance started here)."""
    address = without_credentials(options.ray_address or os.environ.get("RAY_ADDRESS") or None)
    return {"name": options.backend, "workers": options.workers,
            **({"ray_address": address} if options.backend == "ray" else {})}


def _planner(options: EvalOptions) -> PlannerConfig | None:
    """The planner settings every strategy runs with (each sets its own strategy); None for the oracle."""
    return replace(options.planner, timeout_s=options.task_timeout) if options.agent != ORACLE else None
