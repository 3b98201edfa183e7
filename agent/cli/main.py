"""The `forethought` command line."""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from agent.llm.protocol import MODEL_SEED_HELP, ConfigError
from envs.browser import BrowserConfig, BrowserNotFound
from envs.env import BrowserEnv
from envs.guard import OriginPolicy
from envs.observation import ObservationOptions
from envs.rendering import render_text
from envs.secrets import Secrets
from envs.types import Task

# A misconfiguration the user can fix: printed as one line, exit code 2. It lives in agent.llm.protocol so that
# `python -m agent.cli` and the installed command catch the same class.
UserError = ConfigError


def task_for_url(url: str, goal: str = "", seed: int | None = None) -> Task:
    """`miniwob:NAME` is a MiniWoB++ task; anything else is a page to open."""
    if url.startswith("miniwob:"):
        from envs.miniwob import MiniWoBTask

        return MiniWoBTask(url.removeprefix("miniwob:"), seed=seed if seed is not None else 0)
    from envs.tasks import UrlTask, resolve_url

    try:
        resolve_url(url)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return UrlTask(id="observe", start_url=url, goal=goal)


def add_browser_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chromium", help="Chromium executable (default: $FORETHOUGHT_CHROMIUM, /usr/bin/chromium)")
    parser.add_argument("--headed", action="store_true", help="show the browser window")


def add_guard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-domain", action="append", default=[], metavar="DOMAIN",
                        help="also let the browser reach DOMAIN and its subdomains (repeatable); every other "
                             "origin than the task's own is blocked")


def browser_config(args: argparse.Namespace) -> BrowserConfig:
    return BrowserConfig(chromium=args.chromium, headless=not args.headed)


async def observe_command(args: argparse.Namespace) -> int:
    task = task_for_url(args.url, seed=args.seed)
    options = ObservationOptions(token_budget=args.budget, html=args.html, screenshot=bool(args.screenshot))
    async with BrowserEnv(browser_config(args), options) as env:
        obs, info = await env.reset(task)
    if args.screenshot and obs.screenshot:
        Path(args.screenshot).write_bytes(obs.screenshot)
    if args.json:
        data: dict[str, Any] = obs.to_dict()
        data["goal"] = info["goal"]
        if not args.html:
            data.pop("html")
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        if info["goal"]:
            print(f"Goal: {info['goal']}")
        print(render_text(obs, args.budget))
        if args.html and obs.html:
            print("\n--- pruned HTML ---\n" + obs.html)
    if args.screenshot:
        print(f"screenshot written to {args.screenshot}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------ run

TASK_FIELDS = ("task_id", "intent", "start_url")
# The roles each strategy calls, so a model is required only for those.
ALL_ROLES = ("policy", "world_model", "verifier")
ROLES_USED = {"reactive": ("policy",), "rerank": ("policy", "verifier"), "dreamer": ALL_ROLES, "revise": ALL_ROLES,
              "beam": ALL_ROLES, "lookahead": ALL_ROLES, "tree": ALL_ROLES, "adaptive": ALL_ROLES}


def load_task_file(path: str) -> Task:
    """A WebArena-style task config (task_id, intent, start_url) as a task; one-line errors name the bad field.
    (Full WebArena loading — site placeholders, evaluators — belongs to the evaluation suite.)"""
    from envs.tasks import UrlTask

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


def task_for_run(args: argparse.Namespace) -> Task:
    if args.task and args.url:
        raise UserError("pass either --task FILE or --url URL --goal TEXT, not both")
    if args.task:
        return load_task_file(args.task)
    if not args.url:
        raise UserError("nothing to do: pass --url URL --goal TEXT, or --task FILE")
    if args.url.startswith("miniwob:"):
        return task_for_url(args.url)  # MiniWoB++ tasks bring their own goal
    if not args.goal:
        raise UserError("--goal TEXT is required with --url (what should the agent do there?)")
    task = task_for_url(args.url, goal=args.goal)
    task.id = "task"
    return task


async def run_command(args: argparse.Namespace) -> int:
    from agent.config import PlannerConfig

    if args.resume:
        return await resume_command(args)
    task = task_for_run(args)
    settings, llm = run_settings(args, args.strategy)
    try:
        config = PlannerConfig(
            strategy=args.strategy, k=args.candidates, horizon=args.horizon, max_steps=args.max_steps,
            samples=args.samples or settings.verifier_samples or PlannerConfig.samples,
            self_refine=args.self_refine, budget=settings.budget(), revisions=args.revisions,
            beam_width=args.beam_width, safe=args.safe, **adaptive_settings(args),
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    models = {role: {"model": spec.model, "base_url": without_credentials(spec.base_url), "seed": settings.seed}
              for role in ALL_ROLES if (spec := settings.role(role)).model}
    return await run_and_report(args, task, llm, config, out, models)


async def resume_command(args: argparse.Namespace) -> int:
    """`run --resume DIR`: go on with a killed run, with the task, planner settings and models its
    trace recorded (model flags given now take precedence; secrets must be given again)."""
    from traces.replay import planner_config
    from traces.resume import read_progress
    from traces.schema import TraceError, build_task

    task_dir = _task_dir(Path(args.resume))
    try:
        progress = read_progress(task_dir)
        task, config = build_task(progress.trace.task["task"]), planner_config(progress.trace)
    except TraceError as exc:
        raise UserError(str(exc)) from None
    if progress.ended:
        print(f"already finished (stop reason {progress.ended.get('stop_reason')}): nothing to resume")
        print(f"result: {task_dir / 'result.json'}")
        return 0
    models = progress.trace.task.get("models") or {}
    print(f"resuming {task_dir} after {progress.steps} finished steps")
    settings, llm = run_settings(args, config.strategy, models)
    return await run_and_report(args, task, llm, config, task_dir.parent, models, resume=True)


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


def run_settings(args: argparse.Namespace, strategy: str,
                 recorded: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The settings and LLM a run uses: environment, then flags; a resumed run's `recorded` models
    fill the roles no flag names, and its seed applies unless --model-seed names another."""
    from agent.llm.settings import ConfigError, build_llm, load_settings

    flags = {"policy_model": args.policy_model, "world_model_model": args.world_model,
             "verifier_model": args.verifier_model}
    for role, spec in (recorded or {}).items():
        if args.model is None and flags.get(f"{role}_model") is None:
            flags[f"{role}_model"], flags[f"{role}_base_url"] = spec.get("model"), spec.get("base_url")
    seed = args.model_seed
    if seed is None:
        seed = next((spec["seed"] for spec in (recorded or {}).values() if spec.get("seed") is not None), None)
    try:
        settings = load_settings(model=args.model, base_url=args.base_url, budget_tokens=args.budget_tokens,
                                 budget_usd=args.budget_usd, budget_calls=args.budget_calls, seed=seed,
                                 **flags)
        return settings, build_llm(settings, ROLES_USED[strategy])
    except ConfigError as exc:
        raise UserError(str(exc)) from None


async def run_and_report(args: argparse.Namespace, task: Task, llm: Any, config: Any, out: Path,
                         models: dict[str, Any], resume: bool = False) -> int:
    from playwright.async_api import Error as PlaywrightError

    from agent.llm.openai_client import EndpointUnreachable
    from agent.loop import run_task

    try:
        secrets = Secrets.from_args(args.secret, [args.secrets_file] if args.secrets_file else [])
        for domain in args.allow_domain:
            OriginPolicy().allow_domain(domain)  # a bad --allow-domain fails here, before the browser starts
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
    try:
        async with BrowserEnv(browser, allow_domains=args.allow_domain, secrets=secrets,
                              upload_dirs=args.upload_dir) as env:
            result = await run_task(task, llm, env, config, out, models=models,
                                    screenshots=not args.no_screenshots, resume=resume)
    except (EndpointUnreachable, ConfigError) as exc:  # result.json is written by then
        raise UserError(str(exc)) from None
    except PlaywrightError as exc:  # only opening the start page can raise; failed actions become observations
        raise UserError(f"could not open the start page of task {task.id}: {str(exc).strip().splitlines()[0]}") from None
    outcome = f"answer {result.answer!r}" if result.answer is not None else "no answer"
    total = result.usage["total"]
    print(f"finished: {outcome}; stop reason {result.stop_reason}"
          + (f" ({result.stop_detail or result.error})" if result.stop_detail or result.error else "")
          + f"; reward {result.reward:g}; {result.steps} steps, {total['total_tokens']} tokens, ${total['cost_usd']:.4f}, {result.seconds:.1f} s")
    print(f"result: {out / task.id / 'result.json'}")
    return 0


def without_credentials(url: str | None) -> str | None:
    """A base URL fit for a trace: user:password@ removed."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))) if parts.username else url


def adaptive_settings(args: argparse.Namespace) -> dict[str, Any]:
    from agent.config import AdaptiveSettings

    return {"adaptive": AdaptiveSettings.load(args.adaptive_settings)} if args.adaptive_settings else {}


def add_run_parser(commands: Any) -> None:
    from agent.config import STRATEGIES, PlannerConfig

    defaults = PlannerConfig()
    run = commands.add_parser("run", help="run the agent on a task",
                              description="Run the agent on a page (--url, --goal) or a WebArena-style task file.")
    run.add_argument("--url", help="URL, file path, bundled:NAME or miniwob:TASK to start from")
    run.add_argument("--goal", help="what the agent should do (with --url)")
    run.add_argument("--task", metavar="FILE", help="a WebArena-style task config (task_id, intent, start_url)")
    run.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy, help="default: %(default)s")
    run.add_argument("--model", metavar="SPEC",
                     help="model for every role: local (the default: SmolLM2 via llama.cpp), local:NAME, gguf:PATH, "
                          "openai:MODEL, scripted:FILE or replay:TRACE_DIR (answers from a trace)")
    run.add_argument("--policy-model", metavar="SPEC", help="model proposing actions")
    run.add_argument("--world-model", metavar="SPEC", help="model imagining outcomes")
    run.add_argument("--verifier-model", metavar="SPEC", help="model scoring outcomes")
    run.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    run.add_argument("--model-seed", type=int, metavar="N", help=MODEL_SEED_HELP)
    run.add_argument("-k", "--candidates", type=int, default=defaults.k, help="candidates per step (default: %(default)s)")
    run.add_argument("--horizon", type=int, default=defaults.horizon, help="imagined steps (default: 1; beam: 2)")
    run.add_argument("--revisions", type=int, default=defaults.revisions, help="revise: rounds (default: %(default)s)")
    run.add_argument("--beam-width", type=int, default=defaults.beam_width, help="beam: paths kept (default: %(default)s)")
    run.add_argument("--adaptive-settings", metavar="FILE", help="adaptive: thresholds (JSON/TOML; forethought calibrate)")
    run.add_argument("--safe", action="store_true", help="refuse actions predicted to be irreversible (orders, deletes, posts)")
    run.add_argument("--samples", type=int, help=f"verifier samples per candidate (default: {defaults.samples})")
    run.add_argument("--self-refine", action="store_true", help="let the policy drop irrelevant candidates")
    run.add_argument("--max-steps", type=int, default=defaults.max_steps, help="default: %(default)s")
    run.add_argument("--budget-tokens", type=int, help="stop the task after this many tokens")
    run.add_argument("--budget-usd", type=float, help="stop the task after this many dollars")
    run.add_argument("--budget-calls", type=int, help="stop the task after this many LLM calls")
    run.add_argument("--out", metavar="DIR", help="run directory (default: runs/<timestamp>)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="go on with a killed or interrupted run from its last finished step (its task "
                          "directory, runs/<run-id>/<task-id>); task, settings and models come from its trace")
    run.add_argument("--no-screenshots", action="store_true", help="do not keep steps/NNN.png screenshots")
    run.add_argument("--playwright-trace", action="store_true",
                     help="also write a Playwright trace.zip (view with `playwright show-trace`)")
    run.add_argument("--har", action="store_true", help="also write network.har (all requests and responses)")
    add_guard_options(run)
    run.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE",
                     help="a credential the task names as {{NAME}} (repeatable); the model sees only {{NAME}}")
    run.add_argument("--secrets-file", metavar="FILE", help="secrets as KEY=VALUE lines or one JSON object")
    run.add_argument("--allow-downloads", action="store_true",
                     help="let pages download files, kept in <out>/<task-id>/downloads (off by default)")
    run.add_argument("--upload-dir", action="append", default=[], metavar="DIR",
                     help="upload_file may send files under DIR (repeatable; no uploads by default)")
    add_browser_options(run)
    run.set_defaults(handler=run_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forethought", description="A web agent that thinks before it clicks.")
    commands = parser.add_subparsers(dest="command", required=True)

    observe = commands.add_parser("observe", help="print exactly what the agent would see on a page")
    observe.add_argument("url", help="URL, file path, bundled:NAME (e.g. bundled:demo) or miniwob:TASK")
    observe.add_argument("--json", action="store_true", help="machine-readable output")
    observe.add_argument("--html", action="store_true", help="also show the pruned HTML")
    observe.add_argument("--screenshot", metavar="FILE", help="save a PNG screenshot of the viewport")
    observe.add_argument("--budget", type=int, default=ObservationOptions().token_budget, help="token budget")
    observe.add_argument("--seed", type=int, help="seed for miniwob: tasks (default 0)")
    add_browser_options(observe)
    observe.set_defaults(handler=observe_command)

    add_run_parser(commands)
    from agent.cli.models import add_models_command
    from agent.cli.traces import add_trace_commands
    from agent.evaluation.calibrate import add_calibrate_command
    from agent.evaluation.runner import add_eval_command

    add_eval_command(commands)
    add_trace_commands(commands)
    add_calibrate_command(commands)
    add_models_command(commands)

    sites = commands.add_parser("sites", help="the local WebArena-style sites")
    sites_commands = sites.add_subparsers(dest="sites_command", required=True)
    serve = sites_commands.add_parser("serve", help="serve the local sites to browse them by hand (Ctrl-C stops)")
    serve.add_argument("--site", choices=["shop", "forum", "gitlab"], help="one site (default: all)")
    serve.add_argument("--port", type=int, help="first port (default: free ports)")
    serve.set_defaults(handler=sites_serve_command)
    return parser


def sites_serve_command(args: argparse.Namespace) -> int:
    from envs.sites.server import serve_sites

    serve_sites([args.site] if args.site else None, args.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        outcome = args.handler(args)
        return asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    except (ConfigError, BrowserNotFound) as exc:
        print(f"forethought: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
