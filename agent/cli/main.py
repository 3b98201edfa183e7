"""The `forethought` command line: one module per command, and the one place where a user's mistake
becomes a one-line message and exit code 2."""
from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NamedTuple

from agent.llm.protocol import ConfigError
from envs.browser import BrowserNotFound
from envs.secrets import without_url_credentials
from traces.schema import TraceError

# What a user can get wrong (a flag, a model spec, a task or trace file, a missing browser): each says
# what to do in its message. agent.cli.common.UserError is ConfigError; EvalError, LocalModelError and
# ReplayMismatch are ConfigErrors too.
USER_ERRORS = (ConfigError, BrowserNotFound, TraceError)

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int] | int]  # `sites serve` blocks: not async


class Command(NamedTuple):
    module: str  # in agent.cli, with `add_arguments(parser)` setting the options and the handler
    help: str


# Only the module of the command being run is imported: run, eval and replay bring in LangGraph, which alone
# takes seconds to import, and `forethought --help` needs none of them.
COMMANDS = {
    "observe": Command("observe", "print exactly what the agent would see on a page"),
    "run": Command("run", "run the agent on a task"),
    "eval": Command("eval", "run an agent on a benchmark suite and score it"),
    "show": Command("show", "write a run's report.html and print its path"),
    "replay": Command("replay", "re-execute a trace's actions and check every state"),
    "wm-eval": Command("wm_eval", "score the world model's predictions in traces"),
    "calibrate": Command("calibrate", "fit adaptive's difficulty thresholds from recorded runs"),
    "models": Command("models", "list the cached local models (`models pull` fetches the default one)"),
    "sites": Command("sites", "the local WebArena-style sites"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `forethought` parser with every command; only `command`'s options when one is named (the
    others are listed by name and help, which is all `forethought --help` shows)."""
    parser = argparse.ArgumentParser(prog="forethought", description="A web agent that thinks before it clicks.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_line) in COMMANDS.items():
        subparser = commands.add_parser(name, help=help_line, description=help_line)
        if command is None or command == name:
            importlib.import_module(f"agent.cli.{module}").add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), "")  # the top level has no other options
    args = build_parser(command).parse_args(argv)
    handler: Handler = args.handler
    try:
        outcome = handler(args)
        return asyncio.run(outcome) if isinstance(outcome, Coroutine) else outcome
    except USER_ERRORS as exc:
        print(f"forethought: {without_url_credentials(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
