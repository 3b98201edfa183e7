"""Defaults per model (issue #17): on a model served here (local, local:NAME, gguf:PATH) -k and --samples
not given are the demo's (scripts/demo.sh: -k 3 --samples 1); given, they win; --help says so."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.common import LOCAL_OVERRULE_MARGIN, load_model_settings, planner_from_args
from agent.cli.main import build_parser, main
from agent.config import PlannerConfig

COMMANDS = {"run": ["run"], "eval": ["eval", "--suite", "local"]}


def planner_for(argv: list[str]) -> tuple[int, int]:
    """k and samples of the planner a command line makes (the command's own code; no model is loaded)."""
    args = build_parser(argv[0]).parse_args(argv)
    planner = planner_from_args(args, load_model_settings(args))
    return planner.k, planner.samples


@pytest.fixture
def no_model_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORETHOUGHT_MODEL", "FORETHOUGHT_BASE_URL", "FORETHOUGHT_VERIFIER_SAMPLES", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_model_in_env")
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("flags", "expected"), [
    (["--model", "local"], (3, 1)),
    (["--model", "local:qwen2.5-coder-0.5b"], (3, 1)),
    (["--model", "gguf:/models/any.gguf"], (3, 1)),
    ([], (3, 1)),  # no model configured at all: the local one
    (["--model", "local", "-k", "5", "--samples", "2"], (5, 2)),  # given, they win
    (["--model", "openai:gpt-4o-mini"], (PlannerConfig.k, PlannerConfig.samples)),
    (["--model", "scripted:answers.json", "-k", "4"], (4, PlannerConfig.samples)),
    (["--model", "local", "--verifier-model", "openai:gpt-4o"], (3, PlannerConfig.samples)),  # per role
])
def test_a_local_model_plans_with_the_demos_k_and_samples_unless_told(command: str, flags: list[str],
                                                                       expected: tuple[int, int]) -> None:
    assert planner_for([*COMMANDS[command], *flags]) == expected


def test_help_says_what_k_and_samples_are_on_a_local_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser("run").parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"candidates per step (default: {PlannerConfig.k}; 3 when the policy's model is local" in text
    assert f"{PlannerConfig.samples}; 1 when the verifier's model is local" in text


@pytest.mark.usefixtures("no_model_in_env")
def test_the_environments_verifier_samples_beat_the_local_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORETHOUGHT_VERIFIER_SAMPLES", "2")
    assert planner_for(["run", "--model", "local"]) == (3, 2)


@pytest.mark.usefixtures("no_model_in_env")
@pytest.mark.parametrize(("flags", "margin"), [
    (["--model", "local"], LOCAL_OVERRULE_MARGIN),
    (["--model", "openai:gpt-4o-mini"], PlannerConfig.overrule_margin),
    (["--model", "openai:gpt-4o-mini", "--verifier-model", "local"], LOCAL_OVERRULE_MARGIN),  # the verifier's model
    (["--model", "local", "--overrule-margin", "0.3"], 0.3),  # given, it wins
])
def test_a_local_verifier_overrules_the_greedy_proposal_only_by_the_fitted_margin(flags: list[str],
                                                                                  margin: float) -> None:
    args = build_parser("run").parse_args(["run", *flags])
    assert planner_from_args(args, load_model_settings(args)).overrule_margin == margin


def test_an_overrule_margin_outside_0_to_1_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    script = tmp_path / "answers.json"
    script.write_text('{"policy": ["noop()"]}', encoding="utf-8")
    assert main(["run", "--url", "bundled:demo", "--goal", "g", "--model", f"scripted:{script}",
                 "--overrule-margin", "1.5", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith("overrule_margin must be between 0 and 1, got 1.5"), err
