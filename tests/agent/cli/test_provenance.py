"""Every run directory says how it was made (run.json, eval's summary.json), a used --out is refused
unless --resume or --overwrite is given, and `forethought --version`: through the real command line,
with scripted or fake-endpoint models and the oracle on a few local tasks."""
from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from agent import provenance
from agent.cli.main import main
from agent.llm.catalogue import CATALOGUE, DEFAULT_MODEL
from agent.llm.fake_server import FakeOpenAIServer
from agent.llm.settings import load_settings
from agent.provenance import CHECKOUT, role_models
from tests.agent.test_resume import kill_after_steps, script, start_forethought
from traces.schema import read_trace

API_KEY = "sk-provenance-test-key-0123456789"
PASSWORD = "hunter2-in-the-url"
DEMO_ANSWERS = {"policy": [{"when": "Task:", "answer": "send_msg_to_user('done')", "repeat": True}]}


def git_head() -> str:
    return subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def every_file(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


def fails_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`forethought argv` exits 2 with one line on stderr: that line."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("forethought: ") and err.count("\n") == 1, err
    return err


def test_an_eval_records_how_it_was_made_and_never_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    out = tmp_path / "run"
    with FakeOpenAIServer(answers=["report_infeasible('not sold here')"]) as server:
        base_url = server.base_url
        endpoint = base_url.replace("://", f"://ann:{quote(PASSWORD)}@")
        code = main(["eval", "--suite", "local", "--tasks", "local.shop.12", "--strategy", "reactive", "-k", "2",
                     "--samples", "1", "--max-steps", "4", "--budget-tokens", "50000", "--seed", "3",
                     "--model-seed", "7", "--model", "openai:fake-model", "--base-url", endpoint, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    made = read_json(out / "run.json")
    assert made["command"] == "eval" and made["strategies"] == ["reactive"] and made["tasks"] == ["local.shop.12"]
    assert made["forethought"]["version"] == importlib.metadata.version("forethought")
    assert made["forethought"]["commit"] == git_head() and isinstance(made["forethought"]["dirty"], bool)
    software = made["software"]
    assert software["python"] == platform.python_version()
    assert software["playwright"] == importlib.metadata.version("playwright")
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", software["chromium"])
    assert made["models"]["policy"] == {"model": "openai:fake-model", "base_url": base_url, "seed": 7}
    planner = made["planner"]
    assert (planner["k"], planner["samples"], planner["max_steps"], planner["horizon"]) == (2, 1, 4, None)
    assert planner["budget"]["max_tokens"] == 50000 and planner["timeout_s"] == made["task_timeout"] == 600
    assert planner["adaptive"]["k"] == 3  # adaptive's settings, though this strategy does not use them
    assert made["seeds"] == {"suite": 3, "model": 7}
    assert made["backend"] == {"name": "local", "workers": 1}
    assert read_json(out / "summary.json")["run"] == made
    trace = read_trace(out / "reactive" / "local.shop.12")
    assert trace.task["models"] == made["models"]  # the trace names the same models
    leaks = {path for path, data in every_file(out).items() if API_KEY.encode() in data or PASSWORD.encode() in data}
    assert leaks == set()


def test_a_used_out_is_refused_for_eval_until_overwrite_and_resume_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    oracle = ["eval", "--suite", "local", "--agent", "oracle", "--out", str(out)]
    assert main([*oracle, "--tasks", "local.shop.1"]) == 0
    capsys.readouterr()
    before = every_file(out)

    err = fails_with_one_line([*oracle, "--tasks", "local.shop.1"], capsys)
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert every_file(out) == before  # nothing of the earlier run was touched

    assert main([*oracle, "--tasks", "local.shop.1,local.forum.1", "--resume"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in records] == ["local.shop.1", "local.forum.1"]  # only the new task ran
    made = read_json(out / "run.json")
    assert made["tasks"] == ["local.shop.1"] and [r["forethought"]["commit"] for r in made["resumed"]] == [git_head()]
    assert read_json(out / "summary.json")["run"] == made

    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "data.txt").write_text("mine too")
    assert main([*oracle, "--tasks", "local.forum.1", "--overwrite"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in records] == ["local.forum.1"]
    assert not (out / "oracle" / "local.shop.1").exists() and "resumed" not in read_json(out / "run.json")
    assert (out / "notes.txt").read_text() == "mine" and (out / "mine" / "data.txt").read_text() == "mine too"

    assert "not both" in fails_with_one_line([*oracle, "--tasks", "local.forum.1", "--overwrite", "--resume"], capsys)


def test_a_run_records_how_it_was_made_and_a_used_out_is_refused_until_overwrite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(DEMO_ANSWERS))
    out = tmp_path / "run"
    run = ["run", "--url", "bundled:demo", "--goal", "say done", "--model", f"scripted:{answers}", "-k", "3",
           "--strategy", "reactive", "--model-seed", "5", "--out", str(out)]
    assert main(run) == 0
    made = read_json(out / "run.json")
    assert (made["command"], made["strategies"], made["tasks"]) == ("run", ["reactive"], ["demo"])
    assert made["planner"]["k"] == 3 and made["seeds"]["model"] == 5
    assert made["models"]["policy"] == {"model": f"scripted:{answers}", "base_url": None, "seed": 5}
    assert made["forethought"]["commit"] == git_head()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", made["software"]["chromium"])
    assert read_trace(out / "demo").task["models"] == made["models"]
    capsys.readouterr()
    before = every_file(out)

    err = fails_with_one_line(run, capsys)
    assert f"--resume {out}" in err and "--overwrite" in err
    assert every_file(out) == before

    (out / "notes.txt").write_text("mine")
    assert main([*run, "--overwrite"]) == 0
    assert (out / "demo" / "trace.jsonl").read_bytes() != before[out / "demo" / "trace.jsonl"]  # a new run
    assert (out / "notes.txt").read_text() == "mine"
    assert "pass one of them" in fails_with_one_line(["run", "--resume", str(out / "demo"), "--overwrite"], capsys)


@pytest.mark.slow
def test_a_resumed_run_notes_the_resume_in_run_json(tmp_path: Path) -> None:
    page = tmp_path / "tally.html"
    page.write_text("<title>Tally</title><button>Alpha</button><button>Beta</button>", encoding="utf-8")
    out = tmp_path / "run"
    slow = script(tmp_path / "slow.json", 0.4, ["click('e1')", "click('e2')", "send_msg_to_user('done')"])
    running = start_forethought("run", "--url", page, "--goal", "Click both", "-k", "2",
                                "--model", f"scripted:{slow}", "--out", out)
    kill_after_steps(running, out / "tally" / "trace.jsonl", 1)
    made = read_json(out / "run.json")
    assert "resumed" not in made

    resumed = subprocess.run(["forethought", "run", "--resume", str(out / "tally")], capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    now = read_json(out / "run.json")
    [note] = now.pop("resumed")
    assert now == made  # how the run was made stays as it was
    assert note["forethought"]["commit"] == git_head() and note["planner"]["k"] == 2
    assert note["models"]["policy"]["model"] == f"scripted:{slow}"


def test_version_prints_the_version_and_commit() -> None:
    printed = subprocess.run(["forethought", "--version"], capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(rf"forethought {re.escape(importlib.metadata.version('forethought'))} "
                        rf"\(commit {git_head()}(, uncommitted changes)?\)\n", printed)


def test_outside_a_checkout_no_commit_is_claimed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance, "CHECKOUT", tmp_path)  # as when installed from a wheel
    assert provenance.code_version() == {"version": importlib.metadata.version("forethought")}
    assert provenance.version_line() == f"forethought {importlib.metadata.version('forethought')}"


def test_a_local_model_is_recorded_with_its_file_and_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a run with no model configured (the local default) records in run.json and its trace: the
    cache's record of the model, which was checked when the model was loaded, not the file hashed again."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FORETHOUGHT_MODEL", "FORETHOUGHT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    models = tmp_path / "models"
    monkeypatch.setenv("FORETHOUGHT_CACHE_DIR", str(tmp_path))
    entry = CATALOGUE[DEFAULT_MODEL]
    models.mkdir()
    (models / f"{entry.name}.gguf").write_bytes(b"GGUF not really the model")  # its sha256 is not the pinned one
    (models / f"{entry.name}.json").write_text(json.dumps(
        {"name": entry.name, "size": entry.size, "sha256": entry.sha256, "source": entry.source}))
    recorded = role_models(load_settings())
    assert recorded["policy"] == {"model": "local", "base_url": None, "seed": None,
                                  "file": str(models / f"{entry.name}.gguf"), "sha256": entry.sha256}
    assert set(recorded) == {"policy", "world_model", "verifier"}
