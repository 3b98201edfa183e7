"""What the commands share: the browser, guard, model and planner options, and the task a URL names."""
from __future__ import annotations

import argparse
import re
from typing import Any

from agent.config import PlannerConfig, vision_roles
from agent.llm.catalogue import DEFAULT_MODEL
from agent.llm.protocol import MODEL_SEED_HELP, ROLES, ConfigError, Role
from agent.llm.settings import Settings, load_settings
from envs.browser import BrowserConfig
from envs.miniwob import MiniWoBTask
from envs.tasks import START_URL_SEPARATOR, TASK_ID_LENGTH, UrlTask, resolve_url, url_task_id
from envs.types import Task

# A mistake the user can fix: `main` prints it as one line and exits 2. It is the LLM layer's ConfigError, so
# a bad model spec raised deep down and a bad flag caught here reach the user the same way.
UserError = ConfigError


def task_for_url(url: str, goal: str = "", seed: int | None = None, task_id: str | None = None) -> Task:
    """`miniwob:NAME` is a MiniWoB++ task (`miniwob.NAME.seedN`); anything else is a page to open, as task
    `task_id`, by default named after the URL (envs.tasks.url_task_id)."""
    if url.startswith("miniwob:"):
        try:  # an unknown name is refused with the names it may have meant
            return MiniWoBTask(url.removeprefix("miniwob:"), seed=seed if seed is not None else 0)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    check_start_urls(url)
    return UrlTask(id=url_task_id(url) if task_id is None else checked_task_id(task_id), start_url=url, goal=goal)


def checked_task_id(task_id: str) -> str:
    """A task id the user gave, which names its run's task directory."""
    if not re.fullmatch(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{TASK_ID_LENGTH - 1}}}", task_id):
        raise UserError(f"--task-id {task_id!r}: a task id names a directory; use letters, digits, '.', '_' and '-' "
                        f"(at most {TASK_ID_LENGTH}, starting with a letter or digit)")
    return task_id


def check_start_urls(start_url: str, where: str = "") -> None:
    """Each of a task's start URLs (joined by ' |AND| ') is a bundled page, a file that exists, or a URL;
    UserError otherwise ("no such file: PATH"), after `where`."""
    try:
        for url in start_url.split(START_URL_SEPARATOR):
            resolve_url(url.strip())
    except ValueError as exc:
        raise UserError(f"{where}{exc}") from None


def add_browser_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chromium", metavar="PATH",
                        help="Chromium executable (default: $FORETHOUGHT_CHROMIUM, else Debian's "
                             "chromium-headless-shell when headless, else /usr/bin/chromium or chromium on PATH, "
                             "else Playwright's own Chromium)")
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument("--cdp-url", metavar="URL",
                        help="attach to a running Chromium (started with --remote-debugging-port, e.g. "
                             "http://127.0.0.1:9222) instead of launching one: each task gets a new context in it, "
                             "and the run never closes the browser")
    parser.add_argument("--use-open-tab", action="store_true",
                        help="with --cdp-url: drive the browser's open tab, with its cookies and logins, instead of "
                             "a new context (no --har; redirects are checked as navigations, not hop by hop)")


def browser_config(args: argparse.Namespace) -> BrowserConfig:
    """The browser `add_browser_options` describes."""
    if args.use_open_tab and not args.cdp_url:
        raise UserError("--use-open-tab drives a tab of the browser given with --cdp-url URL; pass that too")
    if args.use_open_tab and getattr(args, "har", False):
        raise UserError("--har records a context of our own, and --use-open-tab uses the browser's: drop one")
    return BrowserConfig(chromium=args.chromium, headless=not args.headed, cdp_url=args.cdp_url,
                         use_open_tab=args.use_open_tab)


def add_guard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-domain", action="append", default=[], metavar="DOMAIN",
                        help="also let the browser reach DOMAIN and its subdomains (repeatable); every other "
                             "origin than the task's own is blocked")
    parser.add_argument("--allow-file", action="append", default=[], metavar="DIR",
                        help="also let the browser read local files under DIR (repeatable); otherwise a file:// "
                             "task reads only its own folder, and other tasks no local file")


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run --out already holds (its run.json, results, summaries and task "
                             "directories; nothing else there); without it a used --out is refused")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The models of each role, their endpoint and seed, and the per-task budget (`load_model_settings`)."""
    parser.add_argument("--model", metavar="SPEC",
                        help=f"model for every role: local ({DEFAULT_MODEL} via llama.cpp), local:NAME "
                             "(`forethought models` lists them), gguf:PATH, openai:MODEL, scripted:FILE or "
                             "replay:TRACE_DIR (answers from a trace) (default: $FORETHOUGHT_MODEL, else local when "
                             "no endpoint is configured either)")
    parser.add_argument("--policy-model", metavar="SPEC", help="model proposing actions (default: --model)")
    parser.add_argument("--world-model", metavar="SPEC", help="model imagining outcomes (default: --model)")
    parser.add_argument("--verifier-model", metavar="SPEC", help="model scoring outcomes (default: --model)")
    parser.add_argument("--base-url", metavar="URL",
                        help="OpenAI-compatible endpoint (default: $FORETHOUGHT_BASE_URL, else $OPENAI_BASE_URL, "
                             "else OpenAI's)")
    parser.add_argument("--model-seed", type=int, metavar="N", help=MODEL_SEED_HELP)
    for flag, what, kind in (("tokens", "tokens", int), ("usd", "dollars", float), ("calls", "LLM calls", int)):
        parser.add_argument(f"--budget-{flag}", type=kind, metavar="N",
                            help=f"stop a task after this many {what} (default: $FORETHOUGHT_BUDGET_{flag.upper()}, "
                                 "else no limit)")


def load_model_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment and the flags of `add_model_options`; `overrides` (None: not given)
    replace flags."""
    flags = {"model": args.model, "policy_model": args.policy_model, "world_model_model": args.world_model,
             "verifier_model": args.verifier_model, "base_url": args.base_url, "seed": args.model_seed,
             "budget_tokens": args.budget_tokens, "budget_usd": args.budget_usd, "budget_calls": args.budget_calls}
    settings = load_settings(**(flags | overrides))
    vision_from_args(args, settings)  # a text-only local model is refused before it is loaded
    return settings


# On a model served here (local, local:NAME, gguf:PATH) every call takes seconds on the CPU: unless -k or
# --samples is given, a step considers what the demo does (scripts/demo.sh), not PlannerConfig's defaults.
LOCAL_K, LOCAL_SAMPLES = 3, 1
# Fitted on a tuning split (scripts/fit_margin.py: MiniWoB++ seed 1, Qwen2.5-Coder-1.5B judging): below
# this margin a local verifier's overrules of the greedy proposal lost more tasks than they won.
LOCAL_OVERRULE_MARGIN = 0.95


def overrule_margin(given: float | None, settings: Settings) -> float:
    """`given` (--overrule-margin), else the fitted local one on a local verifier, else PlannerConfig's."""
    if given is not None:
        return given
    return LOCAL_OVERRULE_MARGIN if settings.runs_locally("verifier") else PlannerConfig.overrule_margin


def add_planner_options(parser: argparse.ArgumentParser) -> None:
    """How much each step may consider (`planner_from_args`)."""
    defaults = PlannerConfig()
    parser.add_argument("-k", "--candidates", type=int,
                        help=f"candidates per step (default: {defaults.k}; {LOCAL_K} when the policy's model is "
                             "local: local, local:NAME, gguf:PATH)")
    parser.add_argument("--horizon", type=int, default=defaults.horizon, metavar="H",
                        help="imagined steps per candidate; beam, tree: the search depth (default: 1; beam, tree: 2)")
    parser.add_argument("--samples", type=int,
                        help=f"verifier samples per candidate (default: $FORETHOUGHT_VERIFIER_SAMPLES, else "
                             f"{defaults.samples}; {LOCAL_SAMPLES} when the verifier's model is local)")
    parser.add_argument("--overrule-margin", type=float, metavar="M",
                        help="how far (0-1) another candidate's verdict must out-score the greedy proposal's for "
                             f"it to run instead (default: {defaults.overrule_margin}; {LOCAL_OVERRULE_MARGIN} when "
                             "the verifier's model is local, fitted on a tuning split)")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, metavar="N",
                        help="stop a task after this many actions (default: %(default)s)")
    parser.add_argument("--vision", nargs="?", const=",".join(ROLES), metavar="ROLES",
                        help="show multimodal models the viewport's screenshot with each element's id drawn at its "
                             f"box (set-of-marks), beside the page's text: for the roles named ({','.join(ROLES)}; "
                             "bare --vision: all three)")


def vision_from_args(args: argparse.Namespace, settings: Settings) -> tuple[Role, ...]:
    """The roles --vision names; a role whose model runs here (llama.cpp's text-only models) is refused."""
    if not getattr(args, "vision", None):  # a command without planner options
        return ()
    try:
        roles = vision_roles(args.vision)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for role in roles:
        if settings.runs_locally(role):
            raise UserError(f"--vision {role}: the model at {settings.model_spec(role)} (llama.cpp on this machine) "
                            "does not take images; drop --vision or use a multimodal model")
    return roles


def planner_from_args(args: argparse.Namespace, settings: Settings, **more: Any) -> PlannerConfig:
    """The planner the flags of `add_planner_options` describe, with the settings' budget; `more` sets
    the rest (strategy, revisions, ...). -k, --samples and --overrule-margin not given are the local
    defaults on a local model."""
    k = args.candidates
    if k is None:
        k = LOCAL_K if settings.runs_locally("policy") else PlannerConfig.k
    samples = args.samples if args.samples is not None else settings.verifier_samples
    if samples is None:
        samples = LOCAL_SAMPLES if settings.runs_locally("verifier") else PlannerConfig.samples
    margin = overrule_margin(args.overrule_margin, settings)
    vision = vision_from_args(args, settings)
    try:
        return PlannerConfig(k=k, horizon=args.horizon, max_steps=args.max_steps, samples=samples,
                             overrule_margin=margin, budget=settings.budget(), vision=vision, **more)
    except ValueError as exc:
        raise UserError(str(exc)) from None
