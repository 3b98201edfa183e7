"""`forethought eval --backend ray` on a real local Ray instance of 2 CPUs: the same study gives the same
results, traces and summaries on both backends, and a Ray worker killed mid-task loses nothing."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agent.cli.main import main
from agent.evaluation.ray_backend import init_ray
from agent.evaluation.runner import EvalOptions, run_eval
from agent.evaluation.suites import load_suite
from agent.llm.settings import load_settings
from tests.agent.evaluation.test_evaluate import comparable, planner_options, read_results, write_script

ray = pytest.importorskip("ray")
ORACLE_TASKS = ["local.shop.1", "local.shop.11", "local.forum.1"]
PLANNER_TASKS = ["local.shop.2", "local.shop.12"]


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    init_ray(ray, cpus=2)
    yield
    ray.shutdown()


def untimed(summary: dict) -> dict:
    return {s: {k: v for k, v in row.items() if k != "mean_seconds"} for s, row in summary["strategies"].items()}


def trace_events(task_dir: Path) -> list[tuple[str, object]]:
    """What a trace says happened, without its timings: each event's type and its action, if any."""
    events = [json.loads(line) for line in (task_dir / "trace.jsonl").read_text().splitlines()]
    return [(e["type"], e.get("action") or e.get("chosen")) for e in events]


async def test_a_study_on_ray_gives_the_results_traces_and_summary_of_the_local_backend(tmp_path, ray_instance):
    oracle = load_suite("local", ORACLE_TASKS)
    local_oracle = await run_eval(EvalOptions(suite="local", out=tmp_path / "local" / "oracle", agent="oracle",
                                              workers=2, progress=None), oracle)
    # The Ray run resumes a copy of the local one that finished one task: --resume works across backends.
    shutil.copytree(tmp_path / "local" / "oracle", tmp_path / "ray" / "oracle")
    results = tmp_path / "ray" / "oracle" / "results.jsonl"
    results.write_text(results.read_text().splitlines(keepends=True)[0])
    ray_oracle = await run_eval(EvalOptions(suite="local", out=tmp_path / "ray" / "oracle", agent="oracle", workers=2,
                                            resume=True, backend="ray", progress=None), oracle)
    script = write_script(tmp_path / "script.json")
    planned = {}
    for backend in ("local", "ray"):
        options = planner_options(tmp_path / backend / "planner", "local", script, ("reactive", "rerank"), workers=2)
        options.backend = backend
        planned[backend] = await run_eval(options, load_suite("local", PLANNER_TASKS))
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    for part in ("oracle", "planner"):
        assert comparable(read_results(on_ray / part)) == comparable(read_results(local / part))
    assert [r["status"] for r in read_results(on_ray / "oracle")] == ["success"] * 3
    assert untimed(ray_oracle) == untimed(local_oracle) and untimed(planned["ray"]) == untimed(planned["local"])
    for strategy in ("reactive", "rerank"):
        for task in PLANNER_TASKS:
            local_dir, ray_dir = local / "planner" / strategy / task, on_ray / "planner" / strategy / task
            # Every file a task wrote on the Ray worker came back to --out, under the same name.
            assert sorted(p.relative_to(ray_dir) for p in ray_dir.rglob("*")) == \
                sorted(p.relative_to(local_dir) for p in local_dir.rglob("*"))
            assert trace_events(ray_dir) == trace_events(local_dir)
            assert "forethought-ray-" not in (ray_dir / "result.json").read_text()  # no scratch path of the node


def ray_worker_running_a_task() -> psutil.Process | None:
    """The Ray actor process now inside RemoteWorker.run (Ray titles a process by the method it runs)."""
    for process in psutil.process_iter(["cmdline"]):
        if any("RemoteWorker.run" in part for part in process.info["cmdline"] or ()):
            return process
    return None


async def test_a_ray_worker_killed_mid_task_loses_nothing(tmp_path, ray_instance):
    script = tmp_path / "slow.json"
    # Each model call takes 2 s, so a task is still running when its worker is killed.
    script.write_text(json.dumps({"delay_s": 2, "policy": [
        {"when": "Click the button.", "answer": "click('e1')", "repeat": True},
        {"when": "Focus into the textbox.", "answer": "focus('e1')", "repeat": True}]}))
    options = EvalOptions(suite="miniwob", out=tmp_path / "run", strategies=("reactive",), workers=2, backend="ray",
                          settings=load_settings(model=f"scripted:{script}"), progress=None)
    study = asyncio.create_task(run_eval(options, load_suite("miniwob", ["click-test", "focus-text"])))
    for _ in range(600):
        if (victim := ray_worker_running_a_task()) is not None:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("no Ray worker ever ran a task")
    os.kill(victim.pid, signal.SIGKILL)
    summary = await study
    records = read_results(tmp_path / "run")
    by_task = {r["task_id"]: r["status"] for r in records}
    # One row per task, each a success: the killed worker's task ran again on a new worker.
    assert sorted(by_task.items()) == [("miniwob.click-test.seed0", "success"), ("miniwob.focus-text.seed0", "success")]
    assert len(records) == 2
    assert summary["strategies"]["reactive"]["errors"] == 0
    assert all((tmp_path / "run" / "reactive" / task / "trace.jsonl").is_file() for task in by_task)


def test_without_ray_installed_eval_on_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    code = main(["eval", "--suite", "local", "--agent", "oracle", "--tasks", "local.shop.1", "--backend", "ray",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'forethought[ray]'" in err and len(err.strip().splitlines()) == 1
