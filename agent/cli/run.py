"""`forethought run`: the agent on one task (a page and a goal, or a WebArena-style task file), or
going on with a killed run (`--resume`)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError

from agent.cli.common import (
    UserError,
    add_browser_options,
    add_guard_options,
    add_model_options,
    add_overwrite_option,
    add_planner_options,
    browser_config,
    check_start_urls,
    load_model_settings,
    planner_from_args,
    task_for_url,
)
from agent.cli.progress import RunDisplay
from agent.config import ROLES_USED, STRATEGIES, AdaptiveSettings, PlannerConfig
from agent.evaluation.judge import LLMJudge
from agent.llm.activity import CallActivity
from agent.llm.openai_client import EndpointUnreachable
from agent.llm.protocol import LLM
from agent.llm.settings import RoutedLLM, Settings, build_llm
from agent.loop import run_task
from agent.provenance import (
    clear_run,
    describe_run,
    note_resume,
    resume_note,
    role_models,
    used_out_refusal,
    write_run_file,
)
from agent.replay import planner_config
from agent.state import STOP_BROWSER_CRASHED, STOP_LLM_ERROR
from envs.env import BrowserEnv, StartPageError
from envs.guard import OriginPolicy
from envs.secrets import Secrets
from envs.tasks import UrlTask
from envs.types import Task, first_line
from envs.webarena.config import TaskConfigError, parse_task
from envs.webarena.task import WebArenaTask
from traces.resume import read_progress
from traces.schema import build_task

TASK_FIELDS = ("task_id", "intent", "start_url")
# Stop reasons that exit 1: the model or the browser failed for good, which the user did not cause (a bug
# ends the run with its exception; a misconfiguration is exit 2, in `main`).
FAILED_RUN = (STOP_LLM_ERROR, STOP_BROWSER_CRASHED)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PlannerConfig()
    parser.description = "Run the agent on a page (--url, --goal) or a WebArena-style task file."
    parser.add_argument("--url", help="URL, file path, bundled:NAME or miniwob:TASK to start from")
    parser.add_argument("--goal", help="what the agent should do (with --url)")
    parser.add_argument("--task", metavar="FILE", help="a WebArena-style task config (task_id, intent, start_url)")
    parser.add_argument("--task-id", metavar="ID",
                        help="with --url: the task's id, naming its directory <out>/<ID> (default: from the URL: "
                             "bundled:demo -> demo, a file -> its name without suffix, http://127.0.0.1:8000/shop/cart "
                             "-> 127.0.0.1-8000-shop-cart; miniwob:NAME -> miniwob.NAME.seedN)")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="with --url miniwob:TASK: the episode's seed (default: 0)")
    parser.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy, help="default: %(default)s")
    add_model_options(parser)
    add_planner_options(parser)
    parser.add_argument("--revisions", type=int, default=defaults.revisions,
                        help="revise: rounds (default: %(default)s)")
    parser.add_argument("--beam-width", type=int, default=defaults.beam_width,
                        help="beam: paths kept (default: %(default)s)")
    parser.add_argument("--adaptive-settings", metavar="FILE",
                        help="adaptive: thresholds (JSON/TOML; forethought calibrate)")
    parser.add_argument("--safe", action="store_true",
                        help="refuse actions predicted to be irreversible (orders, deletes, posts)")
    parser.add_argument("--self-refine", action="store_true", help="let the policy drop irrelevant candidates")
    parser.add_argument("--timeout", type=float, metavar="SEC",
                        help=f"end the run after SEC seconds (wall clock) with stop reason timeout, recorded like "
                             f"any stop (default: {defaults.timeout_s:g}; --resume: the run's own limit, which "
                             "counts its earlier time)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/<timestamp>)")
    parser.add_argument("--json", action="store_true",
                        help="print the final result (result.json's content, with its task_dir) as JSON on stdout, "
                             "and the steps on stderr")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="go on with a killed or interrupted run from its last finished step (its task "
                             "directory, runs/<run-id>/<task-id>); task, settings and models come from its trace")
    add_overwrite_option(parser)
    parser.add_argument("--no-screenshots", action="store_true", help="do not keep steps/NNN.png screenshots")
    parser.add_argument("--playwright-trace", action="store_true",
                        help="also write a Playwright trace.zip (view with `playwright show-trace`)")
    parser.add_argument("--har", action="store_true", help="also write network.har (all requests and responses)")
    add_guard_options(parser)
    parser.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE",
                        help="a credential the task names as {{NAME}} (repeatable); the model sees only {{NAME}}")
    parser.add_argument("--secrets-file", metavar="FILE", help="secrets as KEY=VALUE lines or one JSON object")
    parser.add_argument("--allow-downloads", action="store_true",
                        help="let pages download files, kept in <out>/<task-id>/downloads (off by default)")
    parser.add_argument("--upload-dir", action="append", default=[], metavar="DIR",
                        help="upload_file may send files under DIR (repeatable; no uploads by default)")
    add_browser_options(parser)
    parser.set_defaults(handler=run_command)


async def run_command(args: argparse.Namespace) -> int:
    if args.resume:
        if args.overwrite:
            raise UserError("--overwrite replaces a run and --resume goes on with one: pass one of them")
        return await resume_command(args)
    out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    refusal = None if args.overwrite else used_out_refusal(out, f"--resume {out}")
    if refusal:
        raise UserError(refusal)
    task = task_for_run(args)
    settings, llm = run_settings(args, args.strategy)
    task = with_judge(task, llm, args.strategy)
    config = planner_from_args(args, settings, strategy=args.strategy, self_refine=args.self_refine,
                               revisions=args.revisions, beam_width=args.beam_width, safe=args.safe,
                               timeout_s=PlannerConfig.timeout_s if args.timeout is None else args.timeout,
                               **adaptive_settings(args))
    return await run_and_report(args, task, llm, config, out, role_models(settings), settings)


async def resume_command(args: argparse.Namespace) -> int:
    """`run --resume DIR`: go on with a killed run, with the task, planner settings and models its
    trace recorded (model flags given now take precedence; secrets must be given again)."""
    task_dir = _task_dir(Path(args.resume))
    progress = read_progress(task_dir)
    task, config = build_task(progress.trace.task["task"]), planner_config(progress.trace)
    if args.timeout is not None:
        config = with_timeout(config, args.timeout)
    if progress.ended:
        tell(args)(f"already finished (stop reason {progress.ended.get('stop_reason')}): nothing to resume")
        print_result(args, task_dir)
        return 0
    models = progress.trace.task.get("models") or {}
    tell(args)(f"resuming {task_dir} after {progress.steps} finished steps")
    settings, llm = run_settings(args, config.strategy, models)
    task = with_judge(task, llm, config.strategy)
    return await run_and_report(args, task, llm, config, task_dir.parent, models, settings, resume=True)


def with_timeout(config: PlannerConfig, timeout_s: float) -> PlannerConfig:
    try:
        return dataclasses.replace(config, timeout_s=timeout_s)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _task_dir(path: Path) -> Path:
    """A task directory holding trace.jsonl, or a run directory holding exactly one."""
    if (path / "trace.jsonl").is_file():
        return path
    found = sorted(p.parent for p in path.glob("*/trace.jsonl"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"nothing to resume in {path}: pass the task directory of a run (runs/<run-id>/<task-id>)")
    raise UserError(f"{path} holds {len(found)} task runs; pass one of them: " + ", ".join(str(p) for p in found))


def load_task_file(path: str) -> Task:
    """A WebArena-style task config as a task; one-line errors name the bad field. A config with an
    `eval` entry is scored by its evaluators (site placeholders from $SHOPPING etc.); without one, it is
    a page and a goal (task_id, intent, start_url), and its reward stays 0."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"task file not found: {path}") from None
    except ValueError as exc:
        raise UserError(f"task file {path} is not valid JSON: {exc}") from None
    if isinstance(config, list):
        raise UserError(f"task file {path} holds a list of {len(config)} tasks; pass one task config (one JSON object)")
    if not isinstance(config, dict):
        raise UserError(f"task file {path} must hold one JSON object with {', '.join(TASK_FIELDS)}")
    if "eval" in config:
        return scored_task(config, path)
    for name in TASK_FIELDS:
        value = config.get(name)
        if value is None:
            raise UserError(f"task file {path}: missing field {name!r} (a task config needs {', '.join(TASK_FIELDS)})")
        if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
            raise UserError(f"task file {path}: field {name!r} must be a non-empty string, got {value!r}")
    start_url = str(config["start_url"])
    if re.search(r"__[A-Z_]+__", start_url):
        raise UserError(f"task file {path}: field 'start_url' holds a WebArena site placeholder ({start_url}); "
                        "replace it with the site's URL")
    return UrlTask(id=str(config["task_id"]), start_url=start_url, goal=str(config["intent"]))


def scored_task(config: dict[str, Any], path: str) -> WebArenaTask:
    try:
        parsed = parse_task(config, source=path)
        parsed.require_resolved()
    except TaskConfigError as exc:
        raise UserError(str(exc)) from None
    if parsed.eval is None:
        raise UserError(f"task file {path}: task {parsed.task_id} has only WebArena-Verified evaluators; run it "
                        "with `forethought eval` and score agent_response.json with the webarena-verified package")
    return WebArenaTask(parsed)


def with_judge(task: Task, llm: LLM, strategy: str) -> Task:
    """A scored task's fuzzy_match judge: the run's verifier model, or its policy model when the
    strategy calls no verifier (as eval's default judge is the verifier's model)."""
    if isinstance(task, WebArenaTask):
        task.judge = LLMJudge(llm, "verifier" if "verifier" in ROLES_USED[strategy] else "policy")
    return task


def task_for_run(args: argparse.Namespace) -> Task:
    if args.task and args.url:
        raise UserError("pass either --task FILE or --url URL --goal TEXT, not both")
    miniwob = bool(args.url and args.url.startswith("miniwob:"))
    if args.task_id is not None and (args.task or miniwob):
        raise UserError("--task-id names a --url page's task; a task file names its own (task_id), and a miniwob: "
                        "task is miniwob.NAME.seedN")
    if args.seed is not None and not miniwob:
        raise UserError("--seed picks a MiniWoB++ episode: it goes with --url miniwob:TASK")
    if args.task:
        task = load_task_file(args.task)
        if isinstance(task, UrlTask):
            check_start_urls(task.start_url, f"task file {args.task}: start_url: ")
        return task
    if not args.url:
        raise UserError("nothing to do: pass --url URL --goal TEXT, or --task FILE")
    if miniwob:
        return task_for_url(args.url, seed=args.seed)  # MiniWoB++ tasks bring their own goal
    if not args.goal:
        raise UserError("--goal TEXT is required with --url (what should the agent do there?)")
    return task_for_url(args.url, goal=args.goal, task_id=args.task_id)


def run_settings(args: argparse.Namespace, strategy: str,
                 recorded: dict[str, Any] | None = None) -> tuple[Settings, RoutedLLM]:
    """The settings and LLM a run uses: environment, then flags; a resumed run's `recorded` models
    fill the roles no flag names, and its seed applies unless --model-seed names another."""
    flags = {"policy_model": args.policy_model, "world_model_model": args.world_model,
             "verifier_model": args.verifier_model}
    for role, spec in (recorded or {}).items():
        if args.model is None and flags.get(f"{role}_model") is None:
            flags[f"{role}_model"], flags[f"{role}_base_url"] = spec.get("model"), spec.get("base_url")
    seed = args.model_seed
    if seed is None:
        seed = next((spec["seed"] for spec in (recorded or {}).values() if spec.get("seed") is not None), None)
    settings = load_model_settings(args, seed=seed, **flags)
    return settings, build_llm(settings, ROLES_USED[strategy])


def adaptive_settings(args: argparse.Namespace) -> dict[str, Any]:
    """`adaptive=` for PlannerConfig from --adaptive-settings FILE, or nothing without it."""
    if not args.adaptive_settings:
        return {}
    try:
        return {"adaptive": AdaptiveSettings.load(args.adaptive_settings)}
    except ValueError as exc:
        raise UserError(str(exc)) from None


async def run_and_report(args: argparse.Namespace, task: Task, llm: RoutedLLM, config: PlannerConfig, out: Path,
                         models: dict[str, Any], settings: Settings, resume: bool = False) -> int:
    """Run `task` into `out` (with its run.json), showing its progress, and print the outcome; the settings'
    credentials (API keys, base URL passwords) are masked in the run directory like secrets."""
    try:
        secrets = Secrets.from_args(args.secret, [args.secrets_file] if args.secrets_file else [])
        for domain in args.allow_domain:
            OriginPolicy().allow_domain(domain)  # a bad --allow-domain fails here, before the browser starts
        for path in args.allow_file:
            OriginPolicy().allow_file(path)  # and so does a missing --allow-file
    except ValueError as exc:
        raise UserError(str(exc)) from None
    browser = browser_config(args)
    browser.accept_downloads = args.allow_downloads
    if args.allow_downloads:
        browser.downloads_dir = str(out / task.id / "downloads")
    if args.playwright_trace:
        browser.trace_path = str(out / task.id / "trace.zip")
    if args.har:
        browser.har_path = str(out / task.id / "network.har")
    display = RunDisplay(tell(args))  # the calls in flight, then each step's lines
    llm.activity = CallActivity(display.calls)
    try:
        async with BrowserEnv(browser, allow_domains=args.allow_domain, allow_files=args.allow_file,
                              secrets=secrets, upload_dirs=args.upload_dir) as env, display:
            record_run(out, task, config, settings, env.session.browser.version, resume, args.overwrite)
            result = await run_task(task, llm, env, config, out, display.step, models=models,
                                    screenshots=not args.no_screenshots, resume=resume, secrets=settings.credentials())
    except (EndpointUnreachable, StartPageError) as exc:  # result.json is written by then
        raise UserError(str(exc)) from None
    except PlaywrightError as exc:  # a page or the browser failed in a way no observation could hold:
        print(f"forethought: {failed_step(task.id, out / task.id, exc)}", file=sys.stderr)  # not the user's doing
        return 1
    outcome = f"answer {result.answer!r}" if result.answer is not None else "no answer"
    why = result.stop_detail or result.error
    total = result.usage["total"]
    tell(args)(f"finished: {outcome}; stop reason {result.stop_reason}" + (f" ({why})" if why else "")
               + f"; reward {result.reward:g}; {result.steps} steps, {total['total_tokens']} tokens, "
                 f"${total['cost_usd']:.4f}, {result.seconds:.1f} s")
    print_result(args, out / task.id)
    return 1 if result.stop_reason in FAILED_RUN else 0


def tell(args: argparse.Namespace) -> Callable[[str], None]:
    """Where the lines for a reader go: stdout, or stderr when stdout holds the JSON result (--json)."""
    return (lambda line: print(line, file=sys.stderr)) if args.json else print


def print_result(args: argparse.Namespace, task_dir: Path) -> None:
    """Where the result is, or (--json) the result itself: result.json as written, secrets masked."""
    result_file = task_dir / "result.json"
    if args.json:
        result = json.loads(result_file.read_text(encoding="utf-8"))
        print(json.dumps({**result, "task_dir": str(task_dir)}, indent=1, ensure_ascii=False))
    else:
        print(f"result: {result_file}")


def record_run(out: Path, task: Task, config: PlannerConfig, settings: Settings, chromium: str, resume: bool,
               overwrite: bool) -> None:
    """run.json: how the run in `out` was made, or (`resume`) how it was resumed. `overwrite` first
    removes the run `out` held."""
    if resume:
        note_resume(out, resume_note(settings, config))
        return
    if overwrite:
        clear_run(out)
    write_run_file(out, describe_run(
        "run", settings=settings, planner=config, strategies=[config.strategy], tasks=[task.id],
        seeds={"model": settings.seed, "task": getattr(task, "seed", None)}, chromium=chromium))


def failed_step(task_id: str, task_dir: Path, exc: Exception) -> str:
    """What to tell of a browser failure after the start page had opened: in which step, and where the
    run so far is recorded."""
    result_file = task_dir / "result.json"
    steps = json.loads(result_file.read_text(encoding="utf-8"))["steps"] if result_file.is_file() else 0
    return (f"the browser failed in step {steps + 1} of task {task_id}, after the start page had opened: "
            f"{first_line(exc)}; the run so far is recorded in {task_dir} (`forethought show {task_dir}`)")
