"""`forethought show DIR`: write a run's report.html and print its path."""
from __future__ import annotations

import argparse

from agent.cli.common import UserError
from traces.report import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write report.html for a task directory (runs/<run-id>/<task-id>), or for every task "
                          "of a run directory plus an index page.")
    parser.add_argument("path", metavar="RUN_OR_TASK_DIR")
    parser.set_defaults(handler=show_command)


async def show_command(args: argparse.Namespace) -> int:
    try:
        print(write_report(args.path))
    except FileNotFoundError as exc:  # a TraceError (a bad trace) is a user error too; `main` prints it
        raise UserError(str(exc)) from None
    return 0
