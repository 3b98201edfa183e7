"""The `forethought` command line: one module per command, and the one place where a user's mistake
becomes a one-line message and exit code 2."""
from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import os
import sys
import textwrap
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
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
    exit_0: str = "done"  # what exit codes 0 and 1 mean for this command (`--help` says)
    exit_1: str = "an unexpected internal error (a bug)"


RUN_FAILED = ("the run failed for a reason outside your control: the model or the browser failed for good "
              "(stop reason llm_error or browser_crashed), or an internal error")
EXIT_2 = "misuse: a bad flag, file, URL, task or model spec, told in one line on stderr"

# Only the module of the command being run is imported: run, eval and replay bring in LangGraph, which alone
# takes seconds to import, and `forethought --help` needs none of them.
COMMANDS = {
    "observe": Command("observe", "print exactly what the agent would see on a page"),
    "run": Command("run", "run the agent on a task",
                   "the run finished, whatever its outcome: an answer, no answer, --max-steps, --timeout, a spent "
                   "budget", RUN_FAILED),
    "eval": Command("eval", "run an agent on a benchmark suite and score it",
                    "every task has a result; a task whose run failed (llm_error, browser_crashed, timeout) is "
                    "counted as an error in the summary"),
    "mcp": Command("mcp", "serve the browser and the planner as MCP tools over stdio", "the client closed stdin"),
    "show": Command("show", "write a run's report.html and print its path"),
    "replay": Command("replay", "re-execute a trace's actions and check every state",
                      "every state (with --agent: every action and the stop reason) matches the trace",
                      "a replay differs from its trace"),
    "wm-eval": Command("wm_eval", "score the world model's predictions in traces"),
    "calibrate": Command("calibrate", "fit adaptive's difficulty thresholds from recorded runs"),
    "models": Command("models", "list the cached local models (`models pull` fetches the default one)"),
    "sites": Command("sites", "the local WebArena-style sites"),
}


def exit_codes(exit_0: str, exit_1: str) -> str:
    """The --help epilog: what each exit code means, laid out as a list (_Formatter keeps it so)."""
    lines = ["exit codes:"]
    for code, meaning in enumerate((exit_0, exit_1, EXIT_2)):
        lines += textwrap.wrap(meaning, 96, initial_indent=f"  {code}  ", subsequent_indent="     ")
    return "\n".join(lines)


class _Formatter(argparse.HelpFormatter):
    """argparse's layout, except for text laid out already in lines (the exit codes)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `forethought` parser with every command; only `command`'s options when one is named (the
    others are listed by name and help, which is all `forethought --help` shows)."""
    parser = argparse.ArgumentParser(
        prog="forethought", description="A web agent that thinks before it clicks.", formatter_class=_Formatter,
        epilog=exit_codes("the command did its work, whatever the outcome of the run (each command's --help says)",
                          f"{RUN_FAILED}; replay: a replay differs from its trace"))
    parser.add_argument("--debug", action="store_true",
                        help="with a user error, print its traceback too (also FORETHOUGHT_DEBUG=1; "
                             "anywhere on the line)")
    parser.add_argument("--version", action=_Version, help="print forethought's version and git commit, and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_line, exit_0, exit_1) in COMMANDS.items():
        subparser = commands.add_parser(name, help=help_line, description=help_line, formatter_class=_Formatter,
                                        epilog=exit_codes(exit_0, exit_1))
        if command is None or command == name:
            importlib.import_module(f"agent.cli.{module}").add_arguments(subparser)
    return parser


class _Version(argparse.Action):
    """`--version`, told when asked: finding the commit runs git, which other commands need not wait for."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from agent.provenance import version_line

        print(version_line())
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug (anywhere) or FORETHOUGHT_DEBUG=1: a user error's traceback too, after its one line.
    debug = "--debug" in argv or os.environ.get("FORETHOUGHT_DEBUG") == "1"
    argv = [arg for arg in argv if arg != "--debug"]
    command = next((arg for arg in argv if not arg.startswith("-")), "")  # the top level has no other options
    parser = build_parser(command)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        outcome = handler(args)
        return asyncio.run(outcome) if isinstance(outcome, Coroutine) else outcome
    except USER_ERRORS as exc:
        return _refuse(without_url_credentials(str(exc)), debug)
    except BrokenPipeError:  # `forethought observe URL | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit fails quietly
        return 0
    except OSError as exc:
        if exc.filename is None or exc.errno not in PATH_ERRNOS:
            raise  # not about a path the user named: a bug or the machine, with its traceback
        return _refuse(describe_path_error(exc, _option_naming(parser, command, args, exc.filename)), debug)
    except KeyboardInterrupt:
        return 130


def _refuse(message: str, debug: bool) -> int:
    """A user's mistake: one line on stderr (and, debugging, the traceback that led to it), exit 2."""
    if debug:
        traceback.print_exc()
    print(f"forethought: {message}", file=sys.stderr)
    return 2


# A path the user gave that is not what it should be: missing, a directory for a file or the other way
# round, not theirs to read or write, on a full or read-only disk.
PATH_ERRNOS = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
               errno.EEXIST, errno.ENAMETOOLONG}
OUTPUT_OPTIONS = {"--out"}  # where a command writes


def describe_path_error(exc: OSError, given: GivenPath | None) -> str:
    """One line on what is wrong with `exc.filename`, naming the option it came from (`given`)."""
    path = Path(str(exc.filename)).expanduser().absolute()

    def name(of: Path) -> str:  # the option and its value when they name `of` itself
        if given is None:
            return str(of)
        option = f"{given.option} {given.value}" if given.option else given.value
        return option if given.path == of else f"{option}: {of}"

    in_the_way = _file_in_the_way(path) if exc.errno in (errno.ENOTDIR, errno.EEXIST) else None
    if given is not None and given.option in OUTPUT_OPTIONS:
        if in_the_way is not None:
            return f"{name(in_the_way)} is a file; pass a directory (or a path that does not exist yet)"
        return f"{name(path)}: cannot write there ({exc.strerror}); pass a directory you can write to"
    if exc.errno == errno.ENOENT:
        return f"no such file: {name(path)}"
    if exc.errno == errno.EISDIR:
        return f"{name(path)} is a directory; pass a file"
    if in_the_way is not None:
        return f"{name(in_the_way)} is a file where a directory is expected"
    return f"{name(path)}: {exc.strerror}"


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest existing one of `path` and its parents, when it is not a directory."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


class GivenPath(NamedTuple):
    option: str  # "" for a positional argument
    value: str  # as given: `scripted:FILE`
    path: Path  # the path it names, absolute


def _option_naming(parser: argparse.ArgumentParser, command: str, args: argparse.Namespace,
                   filename: str) -> GivenPath | None:
    """The command's argument whose value is `filename` or a directory above it; None when none is."""
    target = Path(filename).expanduser().absolute()
    for option, value in _given_strings(parser, command, args):
        path = value.split(":", 1)[1] if ":" in value and not Path(value).exists() else value
        given = Path(path).expanduser().absolute()
        if given == target or given in target.parents:
            return GivenPath(option, value, given)
    return None


def _given_strings(parser: argparse.ArgumentParser, command: str,
                   args: argparse.Namespace) -> list[tuple[str, str]]:
    """Every string the command was given, with its option ("" for a positional argument)."""
    options: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public way to list a subcommand's arguments
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            options = {a.dest: (a.option_strings[-1] if a.option_strings else "")
                       for a in action.choices[command]._actions}
    return [(options[dest], item) for dest, value in vars(args).items() if dest in options
            for item in (value if isinstance(value, list) else [value]) if isinstance(item, str) and item]


if __name__ == "__main__":
    sys.exit(main())
