"""`forethought replay DIR`: re-execute a trace's actions and check every state, or with --agent re-run
the whole agent offline with every model answer taken from the trace. DIR is a task directory or a
run directory, whose every task is replayed in turn."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from agent.cli.common import UserError, add_browser_options, browser_config
from agent.llm.replayed import ReplayMismatch
from agent.replay import replay_agent
from envs.browser import BrowserSession
from traces.layout import task_dirs
from traces.replay import replay_actions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Re-execute the recorded actions in a fresh browser from the recorded start and compare each state "
        "(URL and element-tree fingerprint) with the recorded one. Exit 0 when all match, 1 at the first "
        "difference. With --agent, re-run the whole agent with every LLM answer taken from the trace instead, "
        "and compare its actions. A run directory replays each of its tasks; exit 1 if any differs.")
    parser.add_argument("trace_dir", metavar="TRACE_OR_RUN_DIR",
                        help="a task directory holding trace.jsonl, or a run directory (an eval's --out too)")
    parser.add_argument("--agent", action="store_true", help="re-run the agent offline (model answers from the trace)")
    parser.add_argument("--out", metavar="DIR", help="with --agent: run directory for the new traces "
                                                     "(default: runs/replay-<timestamp>)")
    add_browser_options(parser)
    parser.set_defaults(handler=replay_command)


async def replay_command(args: argparse.Namespace) -> int:
    """Exit 0 when every replay matches its trace, 1 when any diverges (a bad trace raises TraceError)."""
    root = Path(args.trace_dir)
    try:
        dirs = task_dirs(root)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    out = Path(args.out or Path("runs") / time.strftime("replay-%Y%m%d-%H%M%S"))
    diverged = []
    async with BrowserSession(browser_config(args)) as session:  # one browser for every task
        for task_dir in dirs:
            if len(dirs) > 1:
                print(f"== {task_dir}")
            # An eval's tasks sit under their strategy: keep that level apart in the new run too.
            task_out = out / task_dir.parent.relative_to(root) if task_dir != root else out
            replayed = _replay_agent(task_dir, task_out, session) if args.agent else _replay_actions(task_dir, session)
            if not await replayed:
                diverged.append(task_dir)
    if len(dirs) > 1:
        print(f"replay: {len(dirs) - len(diverged)} of {len(dirs)} tasks the same"
              + (f"; diverged: {', '.join(str(d.relative_to(root)) for d in diverged)}" if diverged else ""))
    return 1 if diverged else 0


async def _replay_actions(task_dir: Path, session: BrowserSession) -> bool:
    result = await replay_actions(task_dir, session, on_step=print)
    if result.divergence is not None:
        print(f"replay: {task_dir}: {result.divergence.describe()}")
        return False
    print(f"replay: {task_dir}: all {result.checked} states match")
    return True


async def _replay_agent(task_dir: Path, out: Path, session: BrowserSession) -> bool:
    try:
        outcome = await replay_agent(task_dir, out, session, on_step=print)
    except ReplayMismatch as exc:  # the agent asked what the trace never answered: it diverged
        print(f"replay: {task_dir}: DIVERGED\n{exc}")
        return False
    print(f"replay: {task_dir}: {'same' if outcome.matched else 'DIVERGED'}: {outcome.describe()}")
    print(f"new trace: {outcome.out_dir}")
    return outcome.matched
