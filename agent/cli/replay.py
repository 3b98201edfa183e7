"""`forethought replay DIR`: re-execute a trace's actions and check every state, or with --agent re-run
the whole agent offline with every model answer taken from the trace. DIR is a task directory or a
run directory, whose every task is replayed in turn."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path
from typing import Any

from agent.cli.common import UserError, add_browser_options, browser_config
from agent.llm.replayed import ReplayMismatch
from agent.replay import replay_agent
from envs.browser import BrowserSession
from envs.env import StartPageError
from traces.layout import task_dirs
from traces.replay import ReplayOutcome, replay_actions
from traces.schema import read_trace


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
    parser.add_argument("--json", action="store_true",
                        help="print a verdict per step of every task as JSON on stdout ({tasks: [{task_dir, matched, "
                             "steps: [{step, action, verdict}]}], matched, total}), the lines on stderr")
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
    say: Say = (lambda line: print(line, file=sys.stderr)) if args.json else print  # stdout holds the JSON
    verdicts = []
    async with BrowserSession(browser_config(args)) as session:  # one browser for every task
        for task_dir in dirs:
            if len(dirs) > 1:
                say(f"== {task_dir}")
            # An eval's tasks sit under their strategy: keep that level apart in the new run too.
            task_out = out / task_dir.parent.relative_to(root) if task_dir != root else out
            try:
                verdicts.append(await _replay_agent(task_dir, task_out, session, say) if args.agent
                                else await _replay_actions(task_dir, session, say))
            except StartPageError as exc:  # the trace's site is not served any more (or not yet)
                raise UserError(f"{task_dir}: {exc}; start the site the trace was recorded on, then replay "
                                "again") from None
    diverged = [Path(v["task_dir"]) for v in verdicts if not v["matched"]]
    if len(dirs) > 1:
        say(f"replay: {len(dirs) - len(diverged)} of {len(dirs)} tasks the same"
            + (f"; diverged: {', '.join(str(d.relative_to(root)) for d in diverged)}" if diverged else ""))
    if args.json:
        print(json.dumps({"tasks": verdicts, "matched": len(dirs) - len(diverged), "total": len(dirs)}, indent=1,
                         ensure_ascii=False))
    return 1 if diverged else 0


Say = Callable[[str], None]


async def _replay_actions(task_dir: Path, session: BrowserSession, say: Say) -> dict[str, Any]:
    result = await replay_actions(task_dir, session, on_step=say)
    if result.divergence is not None:
        say(f"replay: {task_dir}: {result.divergence.describe()}")
    else:
        say(f"replay: {task_dir}: all {result.checked} states match")
    return {"task_dir": str(task_dir), "matched": result.matched, "steps": state_verdicts(task_dir, result)}


def state_verdicts(task_dir: Path, result: ReplayOutcome) -> list[dict[str, Any]]:
    """Each recorded state's verdict: step 0 is the start page, step n the page after the n-th action;
    replaying stops at the first that differs, so the ones after it were not replayed."""
    states: list[tuple[int, str | None]] = [(0, None)]
    states += [(step["step"], step["choice"]) for step in read_trace(task_dir).executed_steps()]
    diverged = result.divergence.step if result.divergence else None
    verdicts: list[dict[str, Any]] = []
    for step, action in states:
        verdict = "same" if diverged is None or step < diverged else "diverged" if step == diverged else "not replayed"
        verdicts.append({"step": step, "action": action, "verdict": verdict})
        if step == diverged and result.divergence:
            verdicts[-1]["diff"] = result.divergence.diff
    return verdicts


async def _replay_agent(task_dir: Path, out: Path, session: BrowserSession, say: Say) -> dict[str, Any]:
    verdict: dict[str, Any] = {"task_dir": str(task_dir)}
    try:
        outcome = await replay_agent(task_dir, out, session, on_step=say)
    except ReplayMismatch as exc:  # the agent asked what the trace never answered: it diverged
        say(f"replay: {task_dir}: DIVERGED\n{exc}")
        return {**verdict, "matched": False, "steps": [], "error": str(exc)}
    say(f"replay: {task_dir}: {'same' if outcome.matched else 'DIVERGED'}: {outcome.describe()}")
    say(f"new trace: {outcome.out_dir}")
    steps = [{"step": index, "recorded": recorded, "replayed": replayed,
              "verdict": "same" if recorded == replayed else "different"}
             for index, (recorded, replayed) in enumerate(zip_longest(outcome.recorded, outcome.replayed), 1)]
    return {**verdict, "matched": outcome.matched, "steps": steps, "new_trace": str(outcome.out_dir),
            "stop_reason": {"recorded": outcome.recorded_stop, "replayed": outcome.replayed_stop}}
