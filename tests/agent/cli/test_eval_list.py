"""`forethought eval --list`: a suite's task ids and intents, as text or JSON, filtered as a run would be,
with no model and no browser."""
from __future__ import annotations

import json

import pytest

from agent.cli.main import main
from agent.evaluation.suites import load_suite


def test_list_prints_a_suites_tasks_without_a_model_or_browser(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORETHOUGHT_MODEL", "nosuch:model")  # refused by any command that loads a model
    assert main(["eval", "--suite", "local", "--list", "--tasks", "local.shop.1,local.forum.1",
                 "--chromium", "/no/such/chromium"]) == 0  # the browser is never looked for
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["local.forum.1", "local.shop.1"]  # in suite order
    assert lines[1].endswith("What is the price of the Northpeak Camping Tent, Four-Person?")

    assert main(["eval", "--suite", "local", "--list", "--json", "--sample", "3", "--seed", "1"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in listed] == [t.id for t in load_suite("local", sample=3, seed=1)]  # as a run picks
    assert all(set(row) == {"id", "intent", "sites"} and row["intent"] and row["sites"] for row in listed)
    assert main(["eval", "--suite", "local", "--list", "--json", "--sample", "3", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == listed  # the same seeded sample

    assert main(["eval", "--suite", "miniwob", "--list", "--json", "--tasks", "click-test"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": "miniwob.click-test.seed0", "intent": None, "sites": []}]
