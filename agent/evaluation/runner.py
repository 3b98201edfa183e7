"""`forethought eval`: a suite's tasks run by parallel workers, scored, and summarised.

Each worker owns a browser and, for the local suite, its own servers of the local sites, which are
reset to pristine data before every task: no task sees another's changes, whichever worker runs it.

On disk (OUT = --out):
    OUT/run.json                          what was run (suite, agent, strategies, tasks)
    OUT/results.jsonl                     one line per finished task, appended as tasks finish
    OUT/summary.json, OUT/summary.csv     per strategy: success rate ± standard error, compute, errors
    OUT/<strategy>/<task-id>/result.json, steps.jsonl, agent_response.json, network.har

A task ends as a success, a failure (the agent got it wrong) or an error (timeout, harness or LLM
trouble): errors are counted apart and do not enter the success rate. `--resume` re-runs only the
tasks without a finished (success or failure) result.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from agent.config import STRATEGIES, PlannerConfig
from agent.evaluation.judge import LLMJudge
from agent.llm.protocol import MODEL_SEED_HELP
from agent.llm.settings import ConfigError, Settings, build_llm
from agent.state import STOP_ERROR, STOP_LLM_ERROR
from envs.browser import BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from envs.webarena.config import SITE_ENV_VARS, TaskConfig, TaskConfigError

SUITES = ("local", "miniwob", "webarena")
AGENTS = ("planner", "oracle")
ORACLE = "oracle"  # the strategy column of oracle runs
DEFAULT_TASK_TIMEOUT_S = 600.0
SUCCESS, FAILURE, ERROR = "success", "failure", "error"


class EvalError(Exception):
    """A misconfigured evaluation (unknown task, missing site URLs, ...); the message says what to do."""


# ------------------------------------------------------------------------------------------ suites


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
            from envs.suites.local import load_local_suite

            return [SuiteTask(str(c.task_id), suite, config=c) for c in load_local_suite()]
        if suite == "webarena":
            from envs.webarena.loading import load_webarena_official

            return [SuiteTask(str(c.task_id), suite, config=c) for c in load_webarena_official(use_env=True)]
    except TaskConfigError as exc:
        raise EvalError(str(exc)) from None
    from envs.suites.miniwob import miniwob_suite

    return [SuiteTask(t.id, suite, miniwob_name=t.name, seed=seed) for t in miniwob_suite(seed=seed)]


def _select(suite: str, tasks: list[SuiteTask], wanted: list[str]) -> list[SuiteTask]:
    if not wanted:
        raise EvalError("--tasks is empty; give task ids separated by commas")
    if suite == "miniwob":
        from envs.suites.miniwob import suite_task_name

        try:
            names = {suite_task_name(t) for t in wanted}
        except ValueError as exc:
            raise EvalError(str(exc)) from None
        return [t for t in tasks if t.miniwob_name in names]
    known = {t.id for t in tasks}
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise EvalError(f"no task {', '.join(unknown[:5])} in the {suite} suite "
                        f"(its ids: {_id_range([t.id for t in tasks])})")
    chosen = set(wanted)
    return [t for t in tasks if t.id in chosen]


def _id_range(ids: list[str]) -> str:
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
        from envs.suites.miniwob import ORACLE_TASKS

        return task.miniwob_name in ORACLE_TASKS
    if task.suite == "local":
        from envs.suites.local import oracle_of

        try:
            oracle_of(task.config)
        except TaskConfigError:
            return False
        return True
    return False  # real WebArena ships no solutions


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
    settings: Settings | None = None  # models for the planner (and the judge)
    judge_model: str | None = None  # model spec of the fuzzy_match judge; default: the verifier's model
    planner: PlannerConfig = field(default_factory=PlannerConfig)  # strategy is set per run
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    auth_dir: Path | None = None  # where WebArena's relative storage_state files are
    screenshots: bool = True  # the agent loop keeps steps/NNN.png
    allow_domains: tuple[str, ...] = ()  # reachable besides each task's own origins (envs/guard.py)
    progress: TextIO | None = field(default_factory=lambda: sys.stderr)

    def __post_init__(self) -> None:
        if self.agent not in AGENTS:
            raise EvalError(f"unknown agent {self.agent!r}; choose one of {', '.join(AGENTS)}")
        if self.workers < 1:
            raise EvalError(f"--workers must be at least 1, got {self.workers}")
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
        self.sites: Any = None  # envs.suites.local.LocalSites

    async def start(self) -> Worker:
        if self.site_names:
            from envs.suites.local import LocalSites

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
        judge = self._judge()
        attempt = _Attempt()
        # A local task may move between the local sites; each site's origin is the task's own.
        site_urls = list(self.sites.site_urls.values()) if self.sites is not None else []
        self.env.allow_domains = [*self.options.allow_domains, *site_urls]
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._attempt(strategy, task, task_dir, judge, attempt),
                                   self.options.task_timeout)
        except TimeoutError:
            attempt.error = f"timed out after {self.options.task_timeout:g} s"
        except Exception as exc:
            attempt.error = _describe_error(exc)
        finally:
            try:
                await self.env.session.close_context()  # writes network.har
            except Exception as exc:
                attempt.error = attempt.error or f"closing the browser context failed: {_describe_error(exc)}"
            if judge is not None:
                await judge.llm.aclose()
        if attempt.error and not self.env.session.browser.is_connected():
            await self._restart_browser()  # a crashed browser must not fail every later task too
        seconds = round(time.perf_counter() - started, 3)
        record = attempt.record(strategy, task, seconds, judge, self.index)
        self._write_task_files(task, task_dir, attempt, record)
        return record

    async def _restart_browser(self) -> None:
        try:
            await self.env.close()
        except Exception:
            pass  # the browser is gone already; what matters is the new one below
        self.env = BrowserEnv(BrowserSession(self.browser_config))
        await self.env.session.start()

    def _judge(self) -> LLMJudge | None:
        settings, spec = self.options.settings, self.options.judge_model
        if settings is None:
            return None
        if spec:
            settings = settings.with_overrides(verifier_model=spec)
        if not settings.role("verifier").model:
            return None
        return LLMJudge(build_llm(settings, ("verifier",)))  # closed when the task is over

    async def _attempt(self, strategy: str, task: SuiteTask, task_dir: Path, judge: LLMJudge | None,
                       attempt: _Attempt) -> None:
        env_task = self._env_task(task, judge)
        attempt.env_task = env_task
        try:
            if strategy == ORACLE:
                await self._run_oracle(task, env_task, attempt)
            else:
                await self._run_planner(strategy, task, env_task, attempt)
        except Exception as exc:
            from envs.webarena.evaluators import JudgeRequiredError

            if isinstance(exc, JudgeRequiredError):
                raise EvalError(f"task {task.id} is graded by fuzzy_match, which needs an LLM judge: "
                                "pass --judge-model SPEC (or --model SPEC)") from exc
            raise

    def _env_task(self, task: SuiteTask, judge: LLMJudge | None) -> Any:
        if task.suite == "miniwob":
            from envs.miniwob import MiniWoBTask

            return MiniWoBTask(task.miniwob_name or "", seed=task.seed)
        assert task.config is not None
        if task.suite == "local":
            config = task.config.with_site_urls(self.sites.site_urls, use_env=False)
            return self.sites.task(config, judge=judge)
        from envs.webarena.task import WebArenaTask

        return WebArenaTask(task.config, judge=judge, auth_dir=self.options.auth_dir)

    async def _run_oracle(self, task: SuiteTask, env_task: Any, attempt: _Attempt) -> None:
        if task.suite == "miniwob":
            from envs.suites.miniwob import run_miniwob_oracle

            score, info = await run_miniwob_oracle(self.env, env_task)
        else:
            from envs.suites.local import oracle_of
            from envs.suites.oracle import run_oracle

            actions = oracle_of(task.config, self.sites.site_urls).actions
            score, info = await run_oracle(self.env, env_task, actions)
        attempt.score, attempt.answer = score, self.env.answer
        attempt.steps = len(info.get("actions", []))
        attempt.stop_reason = "oracle"

    async def _run_planner(self, strategy: str, task: SuiteTask, env_task: Any, attempt: _Attempt) -> None:
        from agent.cli.main import ROLES_USED, without_credentials
        from agent.loop import CHECKPOINT_FILE, run_task

        settings = self.options.settings
        assert settings is not None
        models = {role: {"model": spec.model, "base_url": without_credentials(spec.base_url)}
                  for role in ("policy", "world_model", "verifier") if (spec := settings.role(role)).model}
        # A fresh client per task: a scripted model then answers each task the same way, whichever
        # worker runs it and whatever ran before.
        llm = build_llm(settings, ROLES_USED[strategy])
        try:
            config = replace(self.options.planner, strategy=strategy)
            out = self.options.out / strategy
            # A task killed mid-run left its checkpoint: --resume goes on from its last finished step.
            resume = self.options.resume and (out / task.id / CHECKPOINT_FILE).is_file()
            result = await run_task(env_task, llm, self.env, config, out, on_step=lambda text: None, models=models,
                                    screenshots=self.options.screenshots, resume=resume,
                                    before_close=lambda result: self._score(task, env_task, result, attempt))
        finally:
            await llm.aclose()
        attempt.planner_result = result
        attempt.answer, attempt.steps = result.answer, result.steps
        attempt.stop_reason = result.stop_reason
        attempt.tokens = result.usage["total"]["total_tokens"]
        attempt.calls = result.usage["calls"]
        attempt.cost_usd = result.usage["total"]["cost_usd"]
        if result.stop_reason in (STOP_ERROR, STOP_LLM_ERROR):
            attempt.error = result.error or result.stop_reason

    async def _score(self, task: SuiteTask, env_task: Any, result: Any, attempt: _Attempt) -> None:
        """The run's score, on the page it ended on (still open: the loop calls this before closing it)."""
        attempt.score = result.reward
        if result.stop_reason not in (STOP_ERROR, STOP_LLM_ERROR) and task.config is not None and result.answer is None:
            # WebArena scores a run cut short as if it stopped with "Early stop: <why>" (its run.py).
            attempt.score, _done, _info = await env_task.validate(self.env.session.page,
                                                                  f"Early stop: {result.stop_reason}")

    def _write_task_files(self, task: SuiteTask, task_dir: Path, attempt: _Attempt,
                          record: dict[str, Any]) -> None:
        if task.config is not None:
            from envs.webarena.verified import infer_task_type, write_agent_response

            write_agent_response(task_dir, attempt.answer, infer_task_type(task.config))
        result_path = task_dir / "result.json"
        # The agent loop writes its own record there (also when it fails); the runner's is added to it.
        data = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else {}
        data.update(record)
        evaluation = getattr(attempt.env_task, "last_evaluation", None)
        if evaluation is not None:
            data["evaluation"] = evaluation.to_dict()
        result_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


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
            "calls": self.calls, "cost_usd": round(self.cost_usd, 6), "judge_tokens": judge.usage.total_tokens if judge else 0,
            "seconds": seconds, "error": self.error, "worker": worker,
        }


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return first if isinstance(exc, EvalError) else f"{type(exc).__name__}: {first}".rstrip(": ")


# ------------------------------------------------------------------------------------------ running


async def run_eval(options: EvalOptions, tasks: list[SuiteTask]) -> dict[str, Any]:
    """Run every (strategy, task) not finished yet on `options.workers` workers; returns the summary
    (also written to summary.json and summary.csv)."""
    await check_models(options)
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
    previous = _prepare_out_dir(out, plan, options.resume)
    done = {(r["strategy"], r["task_id"]) for r in previous if r.get("status") in (SUCCESS, FAILURE)}
    jobs = [(s, t) for s in options.strategies for t in tasks if (s, t.id) not in done]
    progress = Progress(len(jobs), options.progress, already=len(done)) if options.progress else None
    if skipped and options.progress:
        print(f"note: {len(skipped)} task(s) have no oracle solution and are skipped: {_id_range(skipped)}",
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
    summary = summarize(records, plan)
    write_summary(out, summary)
    if len(options.strategies) > 1:
        from agent.evaluation.frontier import write_frontier

        files = await write_frontier(out, summary, options.browser)
        summary["frontier"] = {"csv": str(files.csv), "svg": str(files.svg),
                               "png": str(files.png) if files.png else None, "note": files.note,
                               "fronts": files.fronts}
        write_summary(out, summary)  # again, now naming the frontier files
    return summary


async def check_models(options: EvalOptions) -> None:
    """Fail once, before any task runs, on a model that is missing or misnamed."""
    from agent.cli.main import ROLES_USED

    settings = options.settings
    if options.agent == "planner" and settings is None:
        raise EvalError("the planner agent needs models: pass settings (--model SPEC)")
    try:
        if options.agent == "planner":
            for strategy in options.strategies:
                await build_llm(settings, ROLES_USED[strategy]).aclose()
        if options.judge_model and settings is not None:
            await build_llm(settings.with_overrides(verifier_model=options.judge_model), ("verifier",)).aclose()
    except ConfigError as exc:
        raise EvalError(str(exc)) from None


async def _run_jobs(jobs: list[tuple[str, SuiteTask]], options: EvalOptions, sites: tuple[str, ...],
                    finished: Any) -> None:
    queue: asyncio.Queue[tuple[str, SuiteTask]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    workers = [Worker(i, options, sites) for i in range(min(options.workers, len(jobs)))]
    started = await asyncio.gather(*(w.start() for w in workers), return_exceptions=True)
    try:
        failed = [r for r in started if isinstance(r, BaseException)]
        if failed:
            raise failed[0]

        async def work(worker: Worker) -> None:
            while not queue.empty():
                strategy, task = queue.get_nowait()
                finished(await worker.run(strategy, task))

        await asyncio.gather(*(work(w) for w in workers))
    finally:
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)


def _prepare_out_dir(out: Path, plan: dict[str, Any], resume: bool) -> list[dict[str, Any]]:
    """The records of an earlier run to resume (or none); refuses to mix runs."""
    run_file, results_path = out / "run.json", out / "results.jsonl"
    if resume:
        if not run_file.is_file():
            raise EvalError(f"nothing to resume in {out}: it holds no run.json of an earlier eval")
        earlier = json.loads(run_file.read_text(encoding="utf-8"))
        for key in ("suite", "agent"):
            if earlier.get(key) != plan[key]:
                raise EvalError(f"{out} holds a run with {key} {earlier.get(key)!r}, not {plan[key]!r}; "
                                "resume it with the same options, or choose another --out")
        wanted = {(s, t) for s in plan["strategies"] for t in plan["tasks"]}
        return [r for r in read_records(results_path) if (r["strategy"], r["task_id"]) in wanted]
    if results_path.exists():
        raise EvalError(f"{out} already holds results; pass --resume to finish that run, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    return []


def read_records(path: Path) -> list[dict[str, Any]]:
    """results.jsonl, the last record of each (strategy, task) winning; a torn last line is ignored."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut off when the run was killed; that task runs again
            latest[(record["strategy"], record["task_id"])] = record
    return list(latest.values())


# ------------------------------------------------------------------------------------------ summary


def summarize(records: list[dict[str, Any]], plan: dict[str, Any]) -> dict[str, Any]:
    """Per strategy: success rate over the scored tasks (± standard error), errors apart, and the
    mean steps, tokens, cost and seconds per task."""
    latest = {(r["strategy"], r["task_id"]): r for r in records}
    strategies: dict[str, Any] = {}
    for strategy in plan["strategies"]:
        rows = [latest[(strategy, t)] for t in plan["tasks"] if (strategy, t) in latest]
        scored = [r for r in rows if r["status"] != ERROR]
        successes = sum(r["status"] == SUCCESS for r in scored)
        rate = successes / len(scored) if scored else None
        strategies[strategy] = {
            "tasks": len(plan["tasks"]),
            "finished": len(rows),
            "successes": successes,
            "failures": len(scored) - successes,
            "errors": len(rows) - len(scored),
            "success_rate": rate,
            "std_error": math.sqrt(rate * (1 - rate) / len(scored)) if scored else None,
            "mean_steps": _mean(r["steps"] for r in rows),
            "mean_tokens": _mean(r["tokens"] for r in rows),
            "mean_calls": _mean(r["calls"] for r in rows if "calls" in r),  # older runs' records have none
            "mean_cost_usd": _mean(r["cost_usd"] for r in rows),
            "mean_seconds": _mean(r["seconds"] for r in rows),
            "errored_tasks": [r["task_id"] for r in rows if r["status"] == ERROR],
        }
    return {"suite": plan["suite"], "agent": plan["agent"], "skipped_without_oracle": plan["skipped_without_oracle"],
            "strategies": strategies}


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


CSV_FIELDS = ("strategy", "tasks", "finished", "successes", "failures", "errors", "success_rate", "std_error",
              "mean_steps", "mean_tokens", "mean_calls", "mean_cost_usd", "mean_seconds")


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for strategy, row in summary["strategies"].items():
            writer.writerow({"strategy": strategy, **row})


def format_table(summary: dict[str, Any]) -> str:
    """Strategies side by side: success against the compute spent per task."""
    header = f"{'strategy':<10} {'tasks':>5} {'success':>16} {'failed':>6} {'errors':>6} " \
             f"{'steps':>6} {'tokens':>8} {'cost $':>8} {'s/task':>7}"
    lines = [f"{summary['suite']} suite, {summary['agent']} agent", header, "-" * len(header)]
    for strategy, row in summary["strategies"].items():
        rate = "-" if row["success_rate"] is None else \
            f"{100 * row['success_rate']:5.1f}% ± {100 * row['std_error']:4.1f}%"
        lines.append(
            f"{strategy:<10} {row['finished']:>5} {rate:>16} {row['failures']:>6} {row['errors']:>6} "
            f"{_num(row['mean_steps'], '.1f'):>6} {_num(row['mean_tokens'], '.0f'):>8} "
            f"{_num(row['mean_cost_usd'], '.4f'):>8} {_num(row['mean_seconds'], '.1f'):>7}")
    lines.append("success over tasks without errors (± standard error); steps, tokens, cost, seconds: mean per task")
    for strategy, row in summary["strategies"].items():
        if row["errored_tasks"]:
            lines.append(f"{strategy}: errors in {_id_range(row['errored_tasks'])} (see results.jsonl)")
    if summary["skipped_without_oracle"]:
        lines.append(f"skipped (no oracle): {len(summary['skipped_without_oracle'])} task(s)")
    return "\n".join(lines)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class Progress:
    """One line on a stream: redrawn in place on a terminal, one line per finished task otherwise."""

    def __init__(self, total: int, stream: TextIO, already: int = 0, width: int = 20) -> None:
        self.total, self.stream, self.already, self.width = total, stream, already, width
        self.counts = {SUCCESS: 0, FAILURE: 0, ERROR: 0}
        self.started = time.perf_counter()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        done = sum(self.counts.values())
        elapsed = time.perf_counter() - self.started
        filled = self.width * done // max(self.total, 1)
        eta = elapsed / done * (self.total - done)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}"
                f"{f' (+{self.already} done before)' if self.already else ''}  ok {self.counts[SUCCESS]}"
                f"  fail {self.counts[FAILURE]}  err {self.counts[ERROR]}  {elapsed:.0f}s  eta {eta:.0f}s"
                f"  last {record['task_id']}: {record['status']}")
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------------------------------ CLI


def add_eval_command(commands: argparse._SubParsersAction) -> None:
    """Register `forethought eval`."""
    from agent.cli.main import add_browser_options, add_guard_options

    defaults = PlannerConfig()
    ev = commands.add_parser(
        "eval", help="run an agent on a benchmark suite and score it",
        description="Run the agent (or the suite's oracle solutions) on a suite's tasks with parallel "
                    "workers; writes results.jsonl, summary.json and summary.csv and prints a table.")
    ev.add_argument("--suite", required=True, choices=SUITES,
                    help="local: our WebArena-style sites; miniwob: MiniWoB++ (125 tasks); "
                         "webarena: the 812 official tasks on a deployment named by SHOPPING, REDDIT, ... env vars")
    which = ev.add_mutually_exclusive_group()
    which.add_argument("--tasks", metavar="IDS", help="comma-separated task ids (MiniWoB++: task names)")
    which.add_argument("--sample", type=int, metavar="N", help="a random sample of N tasks (seeded by --seed)")
    ev.add_argument("--seed", type=int, default=0, help="seed of --sample and of MiniWoB++ episodes (default: 0)")
    ev.add_argument("--agent", choices=AGENTS, default="planner",
                    help="planner: the agent; oracle: the suite's own solutions (default: %(default)s)")
    ev.add_argument("--strategy", default=defaults.strategy, metavar="S[,S2,...]",
                    help=f"one or more of {', '.join(STRATEGIES)}, compared side by side (default: %(default)s)")
    ev.add_argument("--model", metavar="SPEC",
                    help="model for every role: local (default), gguf:PATH, openai:MODEL, scripted:FILE")
    ev.add_argument("--model-seed", type=int, metavar="N", help=MODEL_SEED_HELP)
    ev.add_argument("--policy-model", metavar="SPEC", help="model proposing actions")
    ev.add_argument("--world-model", metavar="SPEC", help="model imagining outcomes")
    ev.add_argument("--verifier-model", metavar="SPEC", help="model scoring outcomes")
    ev.add_argument("--judge-model", metavar="SPEC",
                    help="model grading fuzzy_match answers (default: the verifier's model)")
    ev.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    ev.add_argument("-k", "--candidates", type=int, default=defaults.k, help="candidates per step (default: %(default)s)")
    ev.add_argument("--horizon", type=int, default=defaults.horizon, help="imagined steps (default: %(default)s)")
    ev.add_argument("--samples", type=int, help=f"verifier samples per candidate (default: {defaults.samples})")
    ev.add_argument("--max-steps", type=int, default=defaults.max_steps, help="default: %(default)s")
    ev.add_argument("--budget-tokens", type=int, help="stop a task after this many tokens")
    ev.add_argument("--budget-usd", type=float, help="stop a task after this many dollars")
    ev.add_argument("--budget-calls", type=int, help="stop a task after this many LLM calls")
    ev.add_argument("--workers", type=int, default=1, help="tasks run in parallel (default: %(default)s)")
    ev.add_argument("--task-timeout", type=float, default=DEFAULT_TASK_TIMEOUT_S, metavar="SEC",
                    help="a task still running after this is an error (default: %(default)g)")
    ev.add_argument("--out", metavar="DIR", help="run directory (default: runs/eval-<timestamp>)")
    ev.add_argument("--resume", nargs="?", const=True, metavar="DIR",
                    help="finish an earlier run (in --out, or DIR): only tasks without a finished result run")
    ev.add_argument("--auth-dir", metavar="DIR",
                    help="webarena: where the tasks' ./.auth/*_state.json login files are (default: .)")
    ev.add_argument("--no-screenshots", action="store_true", help="do not keep steps/NNN.png screenshots")
    add_guard_options(ev)
    add_browser_options(ev)
    ev.set_defaults(handler=eval_command)


def options_from_args(args: argparse.Namespace) -> tuple[EvalOptions, list[SuiteTask]]:
    """The suite's selected tasks and the run's options, from `forethought eval` flags."""
    from agent.cli.main import browser_config

    out = args.resume if isinstance(args.resume, str) else args.out
    if args.resume is True and not args.out:
        raise EvalError("--resume needs the run directory: --resume DIR, or --out DIR --resume")
    tasks = load_suite(args.suite, args.tasks.split(",") if args.tasks else None, args.sample, args.seed)
    settings = None
    strategies = tuple(s.strip() for s in args.strategy.split(",") if s.strip())
    planner = PlannerConfig()
    if args.agent == "planner" or args.judge_model or args.model:
        from agent.llm.settings import load_settings

        try:
            settings = load_settings(
                model=args.model, policy_model=args.policy_model, world_model_model=args.world_model,
                verifier_model=args.verifier_model, base_url=args.base_url, budget_tokens=args.budget_tokens,
                budget_usd=args.budget_usd, budget_calls=args.budget_calls, seed=args.model_seed,
            )
        except ConfigError as exc:
            raise EvalError(str(exc)) from None
        try:
            planner = PlannerConfig(
                k=args.candidates, horizon=args.horizon, max_steps=args.max_steps,
                samples=args.samples or settings.verifier_samples or PlannerConfig.samples,
                budget=settings.budget(),
            )
        except ValueError as exc:
            raise EvalError(str(exc)) from None
    options = EvalOptions(
        suite=args.suite, out=Path(out or Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")),
        agent=args.agent, strategies=strategies, workers=args.workers, task_timeout=args.task_timeout,
        resume=bool(args.resume), settings=settings, judge_model=args.judge_model, planner=planner,
        browser=browser_config(args), auth_dir=Path(args.auth_dir) if args.auth_dir else None,
        screenshots=not args.no_screenshots, allow_domains=tuple(args.allow_domain),
    )
    return options, tasks


async def eval_command(args: argparse.Namespace) -> int:
    from agent.cli.main import UserError

    try:
        options, tasks = options_from_args(args)
        summary = await run_eval(options, tasks)
    except EvalError as exc:
        raise UserError(str(exc)) from None
    print(format_table(summary))
    if "frontier" in summary:
        from agent.evaluation.frontier import format_frontier_table

        frontier = summary["frontier"]
        print(format_frontier_table(summary))
        print(f"frontier plot: {frontier['png'] or frontier['svg']}; numbers: {frontier['csv']}")
        if frontier["note"]:
            print(f"note: {frontier['note']}")
    print(f"results: {options.out / 'results.jsonl'}; summary: {options.out / 'summary.json'}")
    return 0
