"""`forethought calibrate RUNS... [--settings FILE] [--out FILE]`: fit adaptive's thresholds from recorded
runs (agent/evaluation/calibrate.py) and write them to a settings file."""
from __future__ import annotations

import argparse

from agent.cli.common import UserError
from agent.config import AdaptiveSettings
from agent.evaluation.calibrate import calibrate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Fit the adaptive strategy's thresholds from recorded runs (steps.jsonl / trace.jsonl) "
                          "and write them to a settings file.")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories, task directories or step files")
    parser.add_argument("--settings", metavar="FILE",
                        help="settings to start from (JSON or TOML; default: built-in)")
    parser.add_argument("--out", metavar="FILE", default="adaptive.json", help="where to write (default: %(default)s)")
    parser.set_defaults(handler=calibrate_command)


async def calibrate_command(args: argparse.Namespace) -> int:
    try:  # both say what is wrong with the given files in a ValueError
        base = AdaptiveSettings.load(args.settings) if args.settings else None
        settings, lines = calibrate(args.runs, base)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    settings.save(args.out)
    for line in lines:
        print(line)
    print(f"adaptive settings written to {args.out} (use: forethought run --strategy adaptive "
          f"--adaptive-settings {args.out})")
    return 0
