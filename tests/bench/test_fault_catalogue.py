"""The fault catalogue (bench/faults.py), each of its totals a test: every fault survived, no trace
event lost, no secret in any run directory, no request outside the task's origins. The catalogue runs
once per module; each test names the faults that broke its figure."""
from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import pytest

from agent.config import PlannerConfig
from agent.llm.scripted import ScriptedLLM
from bench.faults import (
    NOTE,
    PASSWORD,
    SOLUTION,
    FaultOutcome,
    Lab,
    answered,
    proposal,
    run_catalogue,
    secrets_in,
)


@pytest.fixture(scope="module")
async def outcomes(tmp_path_factory: pytest.TempPathFactory) -> list[FaultOutcome]:
    return await run_catalogue(tmp_path_factory.mktemp("faults"))


def test_the_catalogue_covers_the_model_the_page_and_the_browser(outcomes: list[FaultOutcome]) -> None:
    names = " | ".join(o.name for o in outcomes)
    for fault in ("endpoint down", "flaky", "times out", "slow", "truncated", "garbage", "hostile", "injection",
                  "dialogs", "popup", "download", "file chooser", "never finishes loading", "browser killed",
                  "20,000 elements", "SIGKILL", "base64 in the HAR", "URL-encoded", "user:password@",
                  "noop(1e12)", "loops alert()", "--timeout", "20,000 '{'", "200,000 characters", "floods",
                  "redirect", "worker requests", "bad paths", "broken traces"):
        assert fault in names


def test_every_fault_is_survived(outcomes: list[FaultOutcome]) -> None:
    assert [o.line() for o in outcomes if not o.survived] == []


def test_no_trace_event_is_lost(outcomes: list[FaultOutcome]) -> None:
    assert [o.line() for o in outcomes if o.events_lost] == []


def test_no_secret_reaches_a_run_directory(outcomes: list[FaultOutcome]) -> None:
    assert [(o.name, o.secrets_found) for o in outcomes if o.secrets_found] == []


def test_no_request_leaves_the_allowed_origins(outcomes: list[FaultOutcome]) -> None:
    assert [o.line() for o in outcomes if o.off_origin] == []


async def test_the_lab_would_see_a_leak(tmp_path: Path) -> None:
    """The figures above can fail: without the origin guard the same hostile run reaches the other
    origin, and a file holding the password is found."""
    async with Lab(tmp_path) as lab:
        unguarded = lab.env()
        unguarded.use_guard = False
        obeying = ScriptedLLM({"policy": [SOLUTION[0], proposal("click('e3')"), *SOLUTION[1:]]})
        outcome = await lab.run("unguarded", obeying, expect=answered, env=unguarded,
                                config=PlannerConfig(strategy="reactive", max_steps=6))
    assert outcome.off_origin >= 1
    (tmp_path / "unguarded" / "leak.txt").write_text(f"password={PASSWORD}")
    assert secrets_in(tmp_path / "unguarded") == ["leak.txt"]


def test_the_secrets_check_finds_encoded_forms(tmp_path: Path) -> None:
    """What the encoded-secrets faults count: a secret base64-encoded inside a HAR body, percent-encoded
    in a URL, JSON-escaped, or in a zip's member is found (so 0 found means none is there)."""
    body = base64.b64encode(b"echo: " + NOTE.encode()).decode()
    leaks = {"network.har": json.dumps({"content": {"encoding": "base64", "text": body}}),
             "trace.jsonl": json.dumps({"url": "/search?" + urlencode({"q": NOTE})}),
             "result.json": json.dumps({"answer": NOTE})}
    for name, text in leaks.items():
        (tmp_path / name).write_text(text)
    with zipfile.ZipFile(tmp_path / "trace.zip", "w") as archive:
        archive.writestr("resources/body", NOTE.encode())
    assert secrets_in(tmp_path) == ["network.har", "result.json", "trace.jsonl", "trace.zip:resources/body"]
