"""What `--help` says is what runs: the Chromium launched, the horizon, budgets from the environment, and no
"default: None" a reader cannot use."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from agent.cli.common import add_planner_options, planner_from_args
from agent.cli.main import COMMANDS, main
from agent.llm.settings import load_settings
from envs.browser import HEADLESS_SHELL, find_chromium


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse's line breaks undone


def test_no_help_says_default_none(capsys: pytest.CaptureFixture[str]) -> None:
    for command in [*COMMANDS, "sites serve", "models pull"]:
        shown = help_of(command, capsys)
        assert not re.search(r"default:? None", shown), (command, shown)


def test_chromium_help_names_what_launches(capsys: pytest.CaptureFixture[str]) -> None:
    shown = help_of("run", capsys)
    order = ["$FORETHOUGHT_CHROMIUM", "chromium-headless-shell when headless", "/usr/bin/chromium",
             "Playwright's own Chromium"]
    assert [shown.index(name) for name in order] == sorted(shown.index(name) for name in order)
    if Path(HEADLESS_SHELL).is_file():  # the machine has Debian's shell: a headless run launches it
        assert find_chromium(headless=True) == HEADLESS_SHELL
        assert find_chromium(headless=False) != HEADLESS_SHELL


def test_horizon_help_is_the_planners_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert "(default: 1; beam, tree: 2)" in help_of("eval", capsys)
    parser = argparse.ArgumentParser()
    add_planner_options(parser)
    args = parser.parse_args([])
    settings = load_settings(model="scripted:unused.json")
    for strategy, horizon in [("dreamer", 1), ("lookahead", 1), ("beam", 2), ("tree", 2)]:
        plan = planner_from_args(args, settings, strategy=strategy).step_plan()
        assert plan is not None and plan.horizon == horizon


def test_a_budget_from_the_environment_applies_as_help_says(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert "stop a task after this many LLM calls (default: $FORETHOUGHT_BUDGET_CALLS, else no limit)" in help_of(
        "run", capsys)
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"policy": ["click('e12')", "click('e4')", "send_msg_to_user('done')"]}))
    monkeypatch.setenv("FORETHOUGHT_BUDGET_CALLS", "1")
    assert main(["run", "--url", "bundled:demo", "--goal", "g", "--strategy", "reactive", "--model",
                 f"scripted:{script}", "--no-screenshots", "--out", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "demo" / "result.json").read_text())
    assert (result["stop_reason"], result["usage"]["calls"]) == ("budget_exceeded", 1)
