"""`forethought eval`: the MiniWoB++ oracle through the command, its table and files, and the one-line
errors for a missing deployment, a bad model and --resume without a directory."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agent.cli.common import UserError
from agent.cli.eval import eval_command
from agent.cli.main import build_parser
from envs.webarena.config import SITE_ENV_VARS


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser("eval").parse_args(argv)


def read_results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


async def test_eval_command_runs_the_miniwob_oracle_prints_the_table_and_names_what_to_fix(
        tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert await eval_command(parse(["eval", "--suite", "miniwob", "--agent", "oracle", "--seed", "2", "--out",
                                     str(out), "--tasks", "click-link,miniwob.enter-text,click-dialog"])) == 0
    captured = capsys.readouterr()
    assert "miniwob suite, oracle agent" in captured.out and "100.0%" in captured.out
    assert "1 task(s) have no oracle solution and are skipped: miniwob.click-dialog.seed2" in captured.err
    assert {r["task_id"]: r["status"] for r in read_results(out)} == {
        "miniwob.click-link.seed2": "success", "miniwob.enter-text.seed2": "success"}
    assert (out / "oracle" / "miniwob.click-link.seed2" / "network.har").is_file()
    assert json.loads((out / "summary.json").read_text())["skipped_without_oracle"] == ["miniwob.click-dialog.seed2"]

    for names in SITE_ENV_VARS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="set GITLAB"):
        await eval_command(parse(["eval", "--suite", "webarena", "--model", "scripted:x.json"]))
    with pytest.raises(UserError, match="unknown model scheme 'nosuch'"):  # before any task runs
        await eval_command(parse(["eval", "--suite", "miniwob", "--tasks", "click-test", "--model", "nosuch:m",
                                  "--out", str(tmp_path / "x")]))
    assert not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="--resume needs the run directory"):
        await eval_command(parse(["eval", "--suite", "miniwob", "--agent", "oracle", "--resume"]))
