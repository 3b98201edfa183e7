"""`forethought`'s one error path (every user error: one line on stderr, exit 2) and `--help` loading no command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli.main import COMMANDS, build_parser, main


@pytest.mark.parametrize("argv, message", [
    (["run", "--url", "bundled:demo", "--goal", "x", "--model", "scripted:/nonexistent"],
     "scripted model file not found"),  # a ConfigError from the LLM layer
    (["show", "{tmp}"], "no trace"),  # a TraceError
    (["observe", "bundled:demo", "--chromium", "{tmp}/no-chromium"], "Chromium not found"),  # BrowserNotFound
    (["eval", "--suite", "local", "--agent", "oracle", "--tasks", "local.nosuch"], "no task local.nosuch"),  # EvalError
    (["calibrate", "{tmp}"], "no recorded steps"),  # a bad input the command names as a UserError
])
def test_a_user_error_is_one_line_on_stderr_and_exit_2(argv: list[str], message: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("forethought: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_help_lists_every_command_and_imports_none_of_them() -> None:
    code = ("import sys\nfrom agent.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('agent.cli.') or m in ('agent.loop', 'langgraph')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *help_lines, imported = result.stdout.strip().splitlines()
    assert imported == "['agent.cli.main']"
    assert all(any(line.strip().startswith(name) for line in help_lines) for name in COMMANDS)


def test_the_full_parser_knows_every_commands_options() -> None:
    parser = build_parser()
    assert parser.parse_args(["eval", "--suite", "miniwob", "-k", "2"]).candidates == 2
    assert parser.parse_args(["wm-eval", "runs/x", "--model", "scripted:f.json"]).model == "scripted:f.json"
    assert parser.parse_args(["sites", "serve", "--site", "shop"]).site == "shop"
