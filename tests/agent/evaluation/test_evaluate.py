"""The eval runner on real headless Chromium and the local sites: the oracle and the scripted planner
on local and MiniWoB++ tasks, parallel workers with their own sites, result files and table, resume,
timeouts as errors, determinism, strategy comparison, and the webarena suite's loading and errors."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from agent.evaluation.judge import LLMJudge
from agent.evaluation.runner import EvalOptions, Worker, run_eval
from agent.evaluation.suites import EvalError, SuiteTask, load_suite
from agent.evaluation.summary import format_table
from agent.llm.scripted import ScriptedLLM
from agent.llm.settings import load_settings
from envs.webarena.config import SITE_ENV_VARS

SHOP_TASKS = ["local.shop.1", "local.shop.11", "local.shop.20", "local.shop.22"]  # 11, 20, 22: the same cart
TENT_ID = 64  # the product local.shop.20 puts in the cart (twice)


def oracle_options(tmp_path: Path, suite: str, **kwargs) -> EvalOptions:
    kwargs.setdefault("progress", io.StringIO())
    return EvalOptions(suite=suite, out=tmp_path / "run", agent="oracle", **kwargs)


def read_results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


async def test_local_oracle_on_two_workers_scores_every_task_and_writes_the_run(tmp_path):
    progress = io.StringIO()
    options = oracle_options(tmp_path, "local", workers=2, progress=progress)
    summary = await run_eval(options, load_suite("local", SHOP_TASKS))

    records = read_results(options.out)
    assert sorted(r["task_id"] for r in records) == sorted(SHOP_TASKS)
    assert {r["status"] for r in records} == {"success"}, [r["error"] for r in records]
    assert {r["worker"] for r in records} == {0, 1}  # both workers took tasks
    row = summary["strategies"]["oracle"]
    assert (row["successes"], row["failures"], row["errors"], row["success_rate"], row["std_error"]) == \
        (4, 0, 0, 1.0, 0.0)
    assert json.loads((options.out / "summary.json").read_text()) == summary
    with open(options.out / "summary.csv") as handle:
        (csv_row,) = list(csv.DictReader(handle))
    assert (csv_row["strategy"], csv_row["successes"], csv_row["success_rate"]) == ("oracle", "4", "1.0")
    table = format_table(summary)
    assert "oracle" in table and "100.0% ±  0.0%" in table
    lines = progress.getvalue().splitlines()  # no TTY: 0/4 at once, then a line per task
    assert len(lines) == 5 and "] 0/4 " in lines[0] and "] 4/4 " in lines[-1] and "success 100%" in lines[-1]

    task_dir = options.out / "oracle" / "local.shop.1"
    result = json.loads((task_dir / "result.json").read_text())
    assert (result["success"], result["answer"], result["steps"]) == (True, "$274.99", 3)
    assert result["evaluation"]["score"] == 1.0
    assert json.loads((task_dir / "agent_response.json").read_text()) == {
        "task_type": "RETRIEVE", "status": "SUCCESS", "retrieved_data": ["$274.99"], "error_details": None}
    har = json.loads((task_dir / "network.har").read_text())
    urls = [entry["request"]["url"] for entry in har["log"]["entries"]]
    assert any(url.startswith("http://127.0.0.1:") and "/search" in url for url in urls), urls


async def test_workers_own_their_sites_a_change_or_reset_in_one_never_reaches_the_other(tmp_path):
    options = oracle_options(tmp_path, "local")
    options.out.mkdir()
    tasks = {t.id: t for t in load_suite("local", ["local.shop.11", "local.shop.20"])}
    first, second = Worker(0, options, ("shopping",)), Worker(1, options, ("shopping",))
    await first.start()
    await second.start()
    try:
        assert (await first.run("oracle", tasks["local.shop.20"]))["status"] == "success"  # tents into the cart
        # The second worker resets its shop before its task, and its cart is the pristine one.
        assert (await second.run("oracle", tasks["local.shop.11"]))["status"] == "success"

        def tents_in_cart(worker: Worker) -> int:
            assert worker.sites is not None
            db_path = worker.sites.server("shop").db_path
            assert db_path is not None
            with sqlite3.connect(db_path) as db:
                row = db.execute("SELECT SUM(quantity) FROM cart_items WHERE product_id = ?", (TENT_ID,)).fetchone()
            return row[0] or 0

        assert tents_in_cart(first) == 2  # the second worker's reset did not undo it
        assert tents_in_cart(second) == 0
        assert first.sites is not None and second.sites is not None
        assert first.sites.site_urls != second.sites.site_urls
    finally:
        await first.close()
        await second.close()


async def test_resume_runs_only_unfinished_tasks_and_a_timeout_is_an_error_not_a_failure(tmp_path):
    await run_eval(oracle_options(tmp_path, "miniwob"), load_suite("miniwob", ["click-test"]))
    both = load_suite("miniwob", ["click-test", "click-button"])

    summary = await run_eval(oracle_options(tmp_path, "miniwob", resume=True, task_timeout=0.001), both)
    records = read_results(tmp_path / "run")
    assert [(r["task_id"], r["status"]) for r in records] == [
        ("miniwob.click-test.seed0", "success"), ("miniwob.click-button.seed0", "error")]  # click-test not re-run
    assert records[1]["error"] == "timed out after 0.001 s"
    row = summary["strategies"]["oracle"]
    assert (row["successes"], row["failures"], row["errors"], row["success_rate"]) == (1, 0, 1, 1.0)
    assert "errors in miniwob.click-button.seed0" in format_table(summary)

    summary = await run_eval(oracle_options(tmp_path, "miniwob", resume=True), both)
    assert [r["task_id"] for r in read_results(tmp_path / "run")][2:] == ["miniwob.click-button.seed0"]
    assert summary["strategies"]["oracle"]["successes"] == 2 and summary["strategies"]["oracle"]["errors"] == 0

    with pytest.raises(EvalError, match="already holds a run .*; pass --resume to go on with it, or --overwrite"):
        await run_eval(oracle_options(tmp_path, "miniwob"), both)
    with pytest.raises(EvalError, match="holds a run with agent 'oracle'"):
        await run_eval(EvalOptions(suite="miniwob", out=tmp_path / "run", resume=True, progress=None,
                                   settings=load_settings(model=f"scripted:{write_script(tmp_path / 's.json')}")), both)


# --------------------------------------------------------------------------------- scripted planner

def write_script(path: Path) -> Path:
    """A scripted policy that answers each local task by its intent: one right answer, one wrong, one
    infeasible report; the verifier calls everything complete."""
    script = {
        "policy": [
            {"when": "products are there in the Pet Supplies", "answer": "send_msg_to_user('12')", "repeat": True},
            {"when": "Sonora Pro Wireless Headphones", "answer": "report_infeasible('not sold here')", "repeat": True},
            {"when": "Click the button.", "answer": "click('e1')", "repeat": True},
            {"when": "Focus into the textbox.", "answer": "focus('e1')", "repeat": True},
        ],
        "verifier": [{"when": "Task:", "answer": '{"reason": "fine", "verdict": "complete"}', "repeat": True}],
    }
    path.write_text(json.dumps(script))
    return path


def planner_options(out: Path, suite: str, script: Path, strategies: tuple[str, ...], workers: int = 1) -> EvalOptions:
    from agent.config import PlannerConfig

    return EvalOptions(suite=suite, out=out, agent="planner", strategies=strategies, workers=workers,
                       settings=load_settings(model=f"scripted:{script}"), planner=PlannerConfig(k=2, samples=1),
                       progress=None)


def comparable(records: list[dict]) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k not in ("seconds", "worker")} for r in records),
                  key=lambda r: (r["strategy"], r["task_id"]))


async def test_scripted_planner_compares_strategies_and_two_runs_give_identical_results(tmp_path):
    script = write_script(tmp_path / "script.json")
    tasks = load_suite("local", ["local.shop.2", "local.shop.12"])
    first = await run_eval(planner_options(tmp_path / "a", "local", script, ("reactive", "rerank"), workers=2), tasks)
    records = read_results(tmp_path / "a")
    status = {(r["strategy"], r["task_id"]): r["status"] for r in records}
    for strategy in ("reactive", "rerank"):
        assert status[(strategy, "local.shop.2")] == "failure"  # a wrong answer is a failure, not an error
        assert status[(strategy, "local.shop.12")] == "success"  # "N/A": the task cannot be done
        assert first["strategies"][strategy]["success_rate"] == 0.5
    reactive, rerank = first["strategies"]["reactive"], first["strategies"]["rerank"]
    assert 0 < reactive["mean_tokens"] < rerank["mean_tokens"]  # the verifier's calls cost tokens
    lines = format_table(first).splitlines()
    assert [line.split()[0] for line in lines[3:5]] == ["reactive", "rerank"]
    assert all(" 50.0% ± 35.4%" in line for line in lines[3:5])
    assert json.loads((tmp_path / "a" / "rerank" / "local.shop.12" / "agent_response.json").read_text())[
        "status"] == "NOT_FOUND_ERROR"
    loop_result = json.loads((tmp_path / "a" / "rerank" / "local.shop.2" / "result.json").read_text())
    assert (loop_result["stop_reason"], loop_result["status"], loop_result["answer"]) == ("answer", "failure", "12")
    assert (tmp_path / "a" / "rerank" / "local.shop.2" / "steps.jsonl").is_file()  # the agent loop's own log

    # Again, on one worker: the same results whichever worker ran which task.
    again = await run_eval(planner_options(tmp_path / "b", "local", script, ("reactive", "rerank")), tasks)
    assert comparable(read_results(tmp_path / "b")) == comparable(records)
    assert {s: {k: v for k, v in row.items() if k != "mean_seconds"} for s, row in again["strategies"].items()} == \
        {s: {k: v for k, v in row.items() if k != "mean_seconds"} for s, row in first["strategies"].items()}


async def test_a_navigation_task_cut_short_is_scored_on_the_page_it_ended_on(tmp_path):
    """WebArena scores a run that stops without an answer as "Early stop: ..." — url_match then reads the
    page the run ended on, which must still be open (and network.har is still written after)."""
    script = tmp_path / "scroll.json"
    scroll = '{"candidates": [{"action": "scroll(0, 100)", "reason": "look"}]}'
    script.write_text(json.dumps({"policy": [{"when": "issues assigned to me", "repeat": True, "answer": scroll}]}))
    options = planner_options(tmp_path / "run", "local", script, ("reactive",))
    options.planner.max_steps = 2
    await run_eval(options, load_suite("local", ["local.gitlab.14"]))
    [record] = read_results(tmp_path / "run")
    assert (record["status"], record["stop_reason"], record["error"]) == ("failure", "max_steps", None)
    assert (tmp_path / "run" / "reactive" / "local.gitlab.14" / "network.har").is_file()


async def test_scripted_planner_on_miniwob_succeeds_by_the_pages_own_reward(tmp_path):
    script = write_script(tmp_path / "script.json")
    summary = await run_eval(planner_options(tmp_path / "run", "miniwob", script, ("reactive",)),
                             load_suite("miniwob", ["click-test", "focus-text"]))
    records = read_results(tmp_path / "run")
    assert {r["task_id"]: (r["status"], r["steps"]) for r in records} == {
        "miniwob.click-test.seed0": ("success", 1), "miniwob.focus-text.seed0": ("success", 1)}
    assert summary["strategies"]["reactive"]["success_rate"] == 1.0


async def test_llm_judge_asks_at_temperature_zero_and_counts_its_usage():
    asked = []

    class RecordingLLM(ScriptedLLM):
        async def complete(self, role, messages, **options):
            asked.append((role, messages[-1]["content"], options.get("temperature")))
            return await super().complete(role, messages, **options)

    judge = LLMJudge(RecordingLLM({"verifier": [{"when": "reference answer: $5", "answer": "correct"}]}))
    prompt = "question: x\nreference answer: $5\nstudent answer: 5 dollars"
    assert await judge(prompt) == "correct"
    assert asked == [("verifier", prompt, 0)]
    assert judge.usage.total_tokens > 0 and len(judge.calls) == 1


# --------------------------------------------------------------------------------- suites and CLI


def test_webarena_suite_loads_all_812_tasks_once_site_urls_are_set(monkeypatch):
    for names in SITE_ENV_VARS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    with pytest.raises(EvalError, match=r"set GITLAB \(or WA_GITLAB\).*REDDIT.*SHOPPING .*base URL"):
        load_suite("webarena")
    for name, _ in SITE_ENV_VARS.values():
        monkeypatch.setenv(name, f"http://webarena.test/{name.lower()}")
    tasks = load_suite("webarena")
    assert len(tasks) == 812 == len({t.id for t in tasks})
    assert all(t.config is not None and not t.config.unresolved_placeholders() for t in tasks)
    first_config = tasks[0].config
    assert first_config is not None and first_config.start_urls[0].startswith("http://webarena.test/")
    sample = load_suite("webarena", sample=5, seed=3)
    assert [t.id for t in sample] == [t.id for t in load_suite("webarena", sample=5, seed=3)]
    assert [t.id for t in load_suite("webarena", ["7", "100"])] == ["7", "100"]


def test_local_and_miniwob_suites_and_bad_task_ids():
    local = load_suite("local")
    assert len(local) >= 60 and all(isinstance(t, SuiteTask) and t.config is not None for t in local)
    miniwob = load_suite("miniwob", seed=4)
    assert len(miniwob) == 125 and miniwob[0].id.endswith(".seed4")
    with pytest.raises(EvalError, match="no task local.shop.999 in the local suite"):
        load_suite("local", ["local.shop.999"])
    with pytest.raises(EvalError, match="click-button"):
        load_suite("miniwob", ["click-buton"])
