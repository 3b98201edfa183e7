"""`forethought replay TRACE_DIR`: re-execute a trace's actions and check every state, or with
--agent re-run the whole agent offline with every model answer taken from the trace."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from agent.cli.common import add_browser_options, browser_config
from agent.llm.replayed import ReplayMismatch
from agent.replay import replay_agent
from traces.replay import replay_actions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Re-execute the recorded actions in a fresh browser from the recorded start and compare each state "
        "(URL and element-tree fingerprint) with the recorded one. Exit 0 when all match, 1 at the first "
        "difference. With --agent, re-run the whole agent with every LLM answer taken from the trace instead, "
        "and compare its actions.")
    parser.add_argument("trace_dir", metavar="TRACE_DIR", help="a task directory holding trace.jsonl")
    parser.add_argument("--agent", action="store_true", help="re-run the agent offline (model answers from the trace)")
    parser.add_argument("--out", metavar="DIR", help="with --agent: run directory for the new trace "
                                                     "(default: runs/replay-<timestamp>)")
    add_browser_options(parser)
    parser.set_defaults(handler=replay_command)


async def replay_command(args: argparse.Namespace) -> int:
    """Exit 0 when the replay matches the trace, 1 where it diverges (a bad trace raises TraceError)."""
    if args.agent:
        return await _replay_agent(args)
    result = await replay_actions(args.trace_dir, browser_config(args), on_step=print)
    if result.divergence is not None:
        print(f"replay: {args.trace_dir}: {result.divergence.describe()}")
        return 1
    print(f"replay: {args.trace_dir}: all {result.checked} states match")
    return 0


async def _replay_agent(args: argparse.Namespace) -> int:
    out = Path(args.out or Path("runs") / time.strftime("replay-%Y%m%d-%H%M%S"))
    try:
        outcome = await replay_agent(args.trace_dir, out, browser_config(args), on_step=print)
    except ReplayMismatch as exc:  # the agent asked what the trace never answered: it diverged
        print(f"replay: {args.trace_dir}: DIVERGED\n{exc}")
        return 1
    print(f"replay: {args.trace_dir}: {'same' if outcome.matched else 'DIVERGED'}: {outcome.describe()}")
    print(f"new trace: {outcome.out_dir}")
    return 0 if outcome.matched else 1
