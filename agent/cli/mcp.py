"""`forethought mcp`: serve the browser, the world model and the planner as MCP tools over stdio
(agent/mcp_server.py), with the same models, guard, secrets and budgets as `forethought run`."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from agent.cli.common import (
    UserError,
    add_browser_options,
    add_guard_options,
    add_model_options,
    add_planner_options,
    browser_config,
    load_model_settings,
    planner_from_args,
    task_for_url,
)
from agent.config import ROLES_USED, STRATEGIES, PlannerConfig
from agent.llm.settings import build_llm
from envs.guard import OriginPolicy
from envs.secrets import Secrets
from envs.types import Task

MISSING_MCP = "forethought mcp needs the mcp package: pip install 'forethought[mcp]' (or pip install mcp)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PlannerConfig()
    parser.description = ("Serve the browser, the world model and the planner to an MCP client over stdio: tools "
                          "open, observe, act, imagine, plan_step and run_task.")
    parser.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy,
                        help="how plan_step and run_task plan (default: %(default)s)")
    add_model_options(parser)
    add_planner_options(parser)
    parser.add_argument("--safe", action="store_true",
                        help="refuse actions predicted to be irreversible in plan_step and run_task")
    parser.add_argument("--timeout", type=float, metavar="SEC",
                        help=f"end a run_task after SEC seconds (default: {defaults.timeout_s:g})")
    parser.add_argument("--out", metavar="DIR",
                        help="where calls are recorded (default: runs/mcp-<timestamp>): DIR/session-N/<task-id>/ "
                             "for each page opened, DIR/run-N/<task-id>/ for each run_task")
    parser.add_argument("--no-screenshots", action="store_true", help="do not keep steps/NNN.png screenshots")
    add_guard_options(parser)
    parser.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE",
                        help="a credential actions name as {{NAME}} (repeatable); the caller sees only {{NAME}}")
    parser.add_argument("--secrets-file", metavar="FILE", help="secrets as KEY=VALUE lines or one JSON object")
    parser.add_argument("--upload-dir", action="append", default=[], metavar="DIR",
                        help="upload_file may send files under DIR (repeatable; no uploads by default)")
    add_browser_options(parser)
    parser.set_defaults(handler=mcp_command)


async def mcp_command(args: argparse.Namespace) -> int:
    try:
        from agent.mcp_server import serve
    except ModuleNotFoundError as exc:  # the optional extra; any other missing module is a bug
        if exc.name != "mcp" and not (exc.name or "").startswith("mcp."):
            raise
        raise UserError(MISSING_MCP) from None
    from agent.mcp_tools import Setup, Tools  # the planner's imports take seconds: not before the check above

    try:
        secrets = Secrets.from_args(args.secret, [args.secrets_file] if args.secrets_file else [])
        for domain in args.allow_domain:
            OriginPolicy().allow_domain(domain)  # a bad --allow-domain fails here, before the server starts
        for path in args.allow_file:
            OriginPolicy().allow_file(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    settings = load_model_settings(args)
    llm = build_llm(settings, ROLES_USED[args.strategy])
    config = planner_from_args(args, settings, strategy=args.strategy, safe=args.safe,
                               timeout_s=PlannerConfig.timeout_s if args.timeout is None else args.timeout)

    def task_for(url: str, goal: str) -> Task:
        return task_for_url(url, goal=goal)

    setup = Setup(llm, settings, config, browser_config(args),
                  Path(args.out or Path("runs") / time.strftime("mcp-%Y%m%d-%H%M%S")), task_for, secrets,
                  args.allow_domain, args.allow_file, args.upload_dir, screenshots=not args.no_screenshots)
    try:
        async with Tools(setup) as tools:
            await serve(tools)
    finally:
        await llm.aclose()
    return 0
