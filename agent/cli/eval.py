"""`forethought eval`: the agent (or a suite's oracle solutions) on a benchmark suite, scored, with a table
of success against compute per strategy (agent/evaluation/runner.py runs it)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from agent.cli.common import (
    UserError,
    add_browser_options,
    add_guard_options,
    add_model_options,
    add_overwrite_option,
    add_planner_options,
    browser_config,
    load_model_settings,
    planner_from_args,
)
from agent.cli.progress import print_summary
from agent.config import STRATEGIES, PlannerConfig
from agent.evaluation.frontier import format_frontier_table
from agent.evaluation.runner import AGENTS, BACKENDS, DEFAULT_TASK_TIMEOUT_S, EvalOptions, run_eval
from agent.evaluation.suites import SUITES, SuiteTask, load_suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Run the agent (or the suite's oracle solutions) on a suite's tasks with parallel "
                          "workers; writes results.jsonl, summary.json and summary.csv and prints a table.")
    parser.add_argument("--suite", required=True, choices=SUITES,
                        help="local: our WebArena-style sites; miniwob: MiniWoB++ (125 tasks); webarena: the 812 "
                             "official tasks on a deployment named by SHOPPING, REDDIT, ... env vars")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--tasks", metavar="IDS", help="comma-separated task ids (MiniWoB++: task names)")
    which.add_argument("--sample", type=int, metavar="N", help="a random sample of N tasks (seeded by --seed)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of --sample and of MiniWoB++ episodes (default: 0)")
    parser.add_argument("--list", action="store_true",
                        help="print the selected tasks' ids and intents, one a line, and exit (no model, no browser)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary (summary.json's content) as JSON on stdout instead of the tables, "
                             "the progress on stderr; with --list: a JSON list of {id, intent, sites}")
    parser.add_argument("--agent", choices=AGENTS, default="planner",
                        help="planner: the agent; oracle: the suite's own solutions (default: %(default)s)")
    parser.add_argument("--strategy", default=PlannerConfig.strategy, metavar="S[,S2,...]",
                        help=f"one or more of {', '.join(STRATEGIES)}, compared side by side (default: %(default)s)")
    add_model_options(parser)
    parser.add_argument("--judge-model", metavar="SPEC",
                        help="model grading fuzzy_match answers (default: the verifier's model)")
    add_planner_options(parser)
    parser.add_argument("--workers", type=int, default=1, help="tasks run in parallel (default: %(default)s)")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local: workers in this process; ray: workers as Ray actors, on this machine or "
                             "the cluster at --ray-address (pip install 'forethought[ray]') (default: %(default)s)")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="--backend ray: join the Ray cluster at ADDR (default: $RAY_ADDRESS, else start Ray "
                             "here with --workers CPUs)")
    parser.add_argument("--task-timeout", type=float, default=DEFAULT_TASK_TIMEOUT_S, metavar="SEC",
                        help="a task's run ends after SEC seconds with stop reason timeout, as `run --timeout` "
                             "does, and counts as an error (default: %(default)g)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/eval-<timestamp>)")
    parser.add_argument("--resume", nargs="?", const=True, metavar="DIR",
                        help="finish an earlier run (in --out, or DIR): only tasks without a finished result run")
    add_overwrite_option(parser)
    parser.add_argument("--auth-dir", metavar="DIR",
                        help="webarena: where the tasks' ./.auth/*_state.json login files are (default: .)")
    parser.add_argument("--no-screenshots", action="store_true", help="do not keep steps/NNN.png screenshots")
    add_guard_options(parser)
    add_browser_options(parser)
    parser.set_defaults(handler=eval_command)


def options_from_args(args: argparse.Namespace) -> tuple[EvalOptions, list[SuiteTask]]:
    """The suite's selected tasks and the run's options, from `forethought eval` flags."""
    out = args.resume if isinstance(args.resume, str) else args.out
    if args.resume is True and not args.out:
        raise UserError("--resume needs the run directory: --resume DIR, or --out DIR --resume")
    tasks = load_suite(args.suite, args.tasks.split(",") if args.tasks else None, args.sample, args.seed)
    settings = None
    planner = PlannerConfig()
    if args.agent == "planner" or args.judge_model or args.model:
        settings = load_model_settings(args)
        planner = planner_from_args(args, settings)
    options = EvalOptions(
        suite=args.suite, out=Path(out or Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")),
        agent=args.agent, strategies=tuple(s.strip() for s in args.strategy.split(",") if s.strip()),
        workers=args.workers, task_timeout=args.task_timeout, resume=bool(args.resume), overwrite=args.overwrite,
        seed=args.seed, settings=settings,
        judge_model=args.judge_model, planner=planner, browser=browser_config(args),
        auth_dir=Path(args.auth_dir) if args.auth_dir else None, screenshots=not args.no_screenshots,
        allow_domains=tuple(args.allow_domain), allow_files=tuple(args.allow_file),
        backend=args.backend, ray_address=args.ray_address,
    )
    return options, tasks


def list_tasks(args: argparse.Namespace) -> int:
    """`--list`: the suite's selected tasks, as text or (`--json`) JSON."""
    tasks = load_suite(args.suite, args.tasks.split(",") if args.tasks else None, args.sample, args.seed)
    rows: list[dict[str, Any]] = [{"id": t.id, "intent": t.config.intent if t.config else None,
                                   "sites": list(t.sites)} for t in tasks]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max((len(row["id"]) for row in rows), default=0)
    for row in rows:
        print(f"{row['id']:<{width}}  {row['intent'] or '(the page sets the goal of each episode)'}")
    return 0


async def eval_command(args: argparse.Namespace) -> int:
    if args.list:
        return list_tasks(args)
    options, tasks = options_from_args(args)  # an EvalError is a user error: `main` prints it
    summary = await run_eval(options, tasks)
    if args.json:  # the progress went to stderr
        print(json.dumps(summary, indent=1, ensure_ascii=False))
        return 0
    print_summary(summary)
    if "frontier" in summary:
        frontier = summary["frontier"]
        print(format_frontier_table(summary))
        print(f"frontier plot: {frontier['png'] or frontier['svg']}; numbers: {frontier['csv']}")
        if frontier["note"]:
            print(f"note: {frontier['note']}")
    print(f"results: {options.out / 'results.jsonl'}; summary: {options.out / 'summary.json'}")
    return 0
