"""The trace subcommands of `forethought`: show, replay, wm-eval."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from traces.schema import TRACE_FILE, TraceError


def add_trace_commands(commands: argparse._SubParsersAction) -> None:
    from agent.cli.main import add_browser_options

    show = commands.add_parser("show", help="write a run's report.html and print its path",
                               description="Write report.html for a task directory (runs/<run-id>/<task-id>), or "
                                           "for every task of a run directory plus an index page.")
    show.add_argument("path", metavar="RUN_OR_TASK_DIR")
    show.set_defaults(handler=show_command)

    replay = commands.add_parser(
        "replay", help="re-execute a trace's actions and check every state",
        description="Re-execute the recorded actions in a fresh browser from the recorded start and compare "
                    "each state (URL and element-tree fingerprint) with the recorded one. Exit 0 when all match, "
                    "1 at the first difference. With --agent, re-run the whole agent with every LLM answer "
                    "taken from the trace instead, and compare its actions.")
    replay.add_argument("trace_dir", metavar="TRACE_DIR", help="a task directory holding trace.jsonl")
    replay.add_argument("--agent", action="store_true", help="re-run the agent offline (model answers from the trace)")
    replay.add_argument("--out", metavar="DIR", help="with --agent: run directory for the new trace "
                                                     "(default: runs/replay-<timestamp>)")
    add_browser_options(replay)
    replay.set_defaults(handler=replay_command)

    wm_eval = commands.add_parser("wm-eval", help="score the world model's predictions in traces",
                                  description="For every executed action, compare the recorded prediction with "
                                              "what really happened; with --model, predict again with that model.")
    wm_eval.add_argument("trace_dirs", metavar="TRACE_DIR", nargs="+")
    wm_eval.add_argument("--model", metavar="SPEC", help="re-predict with this model (openai:MODEL, scripted:FILE, ...)")
    wm_eval.add_argument("--base-url", help="OpenAI-compatible endpoint for --model")
    wm_eval.set_defaults(handler=wm_eval_command)


async def show_command(args: argparse.Namespace) -> int:
    from agent.cli.main import UserError
    from traces.report import write_report

    try:
        print(write_report(args.path))
    except (TraceError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    return 0


async def replay_command(args: argparse.Namespace) -> int:
    from agent.cli.main import UserError, browser_config
    from agent.llm.replayed import ReplayMismatch
    from traces.replay import replay_actions, replay_agent

    try:
        if args.agent:
            out = Path(args.out or Path("runs") / time.strftime("replay-%Y%m%d-%H%M%S"))
            try:
                outcome = await replay_agent(args.trace_dir, out, browser_config(args), on_step=print)
            except ReplayMismatch as exc:
                print(f"replay: {args.trace_dir}: DIVERGED\n{exc}")
                return 1
            print(f"replay: {args.trace_dir}: {'same' if outcome.matched else 'DIVERGED'}: {outcome.describe()}")
            print(f"new trace: {outcome.out_dir}")
            return 0 if outcome.matched else 1
        result = await replay_actions(args.trace_dir, browser_config(args), on_step=print)
    except TraceError as exc:
        raise UserError(str(exc)) from None
    if result.divergence is not None:
        print(f"replay: {args.trace_dir}: {result.divergence.describe()}")
        return 1
    print(f"replay: {args.trace_dir}: all {result.checked} states match")
    return 0


async def wm_eval_command(args: argparse.Namespace) -> int:
    from agent.cli.main import UserError
    from agent.evaluation.fidelity import format_scores, score_trace
    from agent.llm.settings import ConfigError, build_llm, load_settings
    from world_model.world_model import LLMWorldModel

    world_model, llm = None, None
    try:
        if args.model:
            settings = load_settings(model=args.model, base_url=args.base_url)
            llm = build_llm(settings, ("world_model",))
            world_model = LLMWorldModel(llm)
        scores = [await score_trace(path, world_model) for path in _task_dirs(args.trace_dirs)]
    except (TraceError, ConfigError) as exc:
        raise UserError(str(exc)) from None
    finally:
        if llm is not None:
            await llm.aclose()
    print(format_scores(scores, args.model))
    return 0


def _task_dirs(paths: list[str]) -> list[Path]:
    """Task directories as given, with a run directory standing for every task in it."""
    found = []
    for path in map(Path, paths):
        inside = sorted(p.parent for p in path.glob(f"*/{TRACE_FILE}")) if not (path / TRACE_FILE).exists() else []
        found.extend(inside or [path])
    return found
