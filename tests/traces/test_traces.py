"""Traces end to end on real headless Chromium with the scripted model: record → show → replay the
actions → replay the agent; a changed page, a missing answer, typed passwords, interrupted runs."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main
from agent.config import PlannerConfig
from agent.llm.replayed import ReplayLLM, ReplayMismatch
from agent.llm.scripted import ScriptedLLM
from agent.loop import run_task
from agent.replay import replay_agent
from envs.browser import BrowserSession
from envs.env import BrowserEnv
from envs.tasks import UrlTask
from traces.replay import replay_actions
from traces.report import write_report
from traces.schema import TRACE_FILE, map_text, path_map, prompt_hash, read_trace

EXAMPLES = Path(__file__).resolve().parents[2] / "traces" / "examples"
EXAMPLE_DIRS = sorted(p.parent for p in EXAMPLES.glob(f"*/{TRACE_FILE}"))
# Real SmolLM2 runs (for wm-eval): their actions replay, but not their answers once prompts change.
SMOLLM2_DIRS = sorted(p.parent for p in (EXAMPLES / "smollm2").glob(f"*/{TRACE_FILE}"))
SECRET = "hunter2-S3cret"

# A clock and an elapsed-seconds counter tick on their own; the buttons change the page for real.
COUNTER_PAGE = """<!doctype html>
<html><head><title>Counters</title></head><body>
<p id="clock">Local time 00:00:00 · 0 s elapsed</p>
<p id="status">Nothing clicked yet.</p>
<button onclick="count('Alpha')">Alpha</button>
<button onclick="count('Beta')">Beta</button>
<script>
  const started = Date.now();
  setInterval(() => {
    document.getElementById('clock').textContent = 'Local time ' + new Date().toLocaleTimeString('en-GB')
      + ' · ' + Math.floor((Date.now() - started) / 1000) + ' s elapsed';
  }, 100);
  function count(name) { document.getElementById('status').textContent = name + ' WORD'; }
</script>
</body></html>
"""
LOGIN_PAGE = """<!doctype html>
<html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>
<p id="status">Not signed in.</p>
<label>User <input id="user"></label>
<label>Password <input id="pw" type="password"></label>
<button onclick="signIn()">Sign in</button>
<script>
  function signIn() {
    const ok = document.getElementById('pw').value.length > 0;
    document.getElementById('status').textContent =
      ok ? 'Welcome, ' + document.getElementById('user').value : 'No password';
  }
</script>
</body></html>
"""


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Replays need no key and no endpoint: make sure none is there to be used.
    for name in list(os.environ):
        if name.startswith(("FORETHOUGHT_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
async def session() -> Any:
    browser = await BrowserSession().start()
    yield browser
    await browser.close()


def script_file(directory: Path, policy: list[str], name: str = "script.json") -> Path:
    answers = [json.dumps({"candidates": [{"action": a, "reason": "next"}]}) for a in policy]
    path = directory / name
    path.write_text(json.dumps({"policy": answers}), encoding="utf-8")
    return path


def run_cli(*argv: object) -> int:
    return main([str(a) for a in argv])


# ------------------------------------------------------------------------------ the examples


@pytest.mark.parametrize("example", EXAMPLE_DIRS + SMOLLM2_DIRS, ids=lambda p: str(p.relative_to(EXAMPLES)))
async def test_example_replays_its_actions_state_by_state(example: Path, session: BrowserSession) -> None:
    outcome = await replay_actions(example, session)
    assert outcome.divergence is None, outcome.divergence.describe()
    assert outcome.checked == len(read_trace(example).executed_steps()) + 1


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
async def test_example_replays_the_whole_agent_offline_with_the_same_choices(
    example: Path, session: BrowserSession, tmp_path: Path
) -> None:
    outcome = await replay_agent(example, tmp_path, session)
    assert outcome.matched, outcome.describe()
    recorded = read_trace(example)
    assert outcome.replayed and len(outcome.replayed) == len(recorded.executed_steps())
    replayed = read_trace(outcome.out_dir)
    # The same questions were asked, so the new trace holds exactly the recorded prompts (file:// paths
    # of this checkout mapped back to the recording's, which may have been made in another one).
    paths = path_map(recorded.task)
    asked = {prompt_hash([{**m, "content": map_text(m["content"], paths, reverse=True)} for m in messages])
             for messages in replayed.prompts.values()}
    assert asked == set(recorded.prompts)


def test_there_are_a_local_page_and_two_miniwob_examples() -> None:
    kinds = [read_trace(d).task["task"]["kind"] for d in EXAMPLE_DIRS]
    assert kinds.count("url") >= 1 and kinds.count("miniwob") >= 2
    assert all(read_trace(d).task["task"].get("seed") is not None for d in EXAMPLE_DIRS
               if read_trace(d).task["task"]["kind"] == "miniwob")


# ------------------------------------------------------------------- record, show, replay (CLI)


def test_record_show_replay_round_trip_and_a_changed_page_fails_at_its_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "counter.html"
    page.write_text(COUNTER_PAGE.replace("WORD", "clicked"), encoding="utf-8")
    script = script_file(tmp_path, ["click('e1')", "click('e2')", "send_msg_to_user('done')"])
    out = tmp_path / "run"
    assert run_cli("run", "--url", page, "--goal", "Click Alpha, then Beta", "--strategy", "reactive",
                   "--model", f"scripted:{script}", "--out", out) == 0
    task_dir = out / "counter"  # named after the page
    assert sorted(p.name for p in (task_dir / "steps").iterdir()) == ["000.png", "001.png", "002.png", "003.png"]

    capsys.readouterr()
    assert run_cli("show", out) == 0  # a run of one task: that task's report
    assert capsys.readouterr().out.strip() == str(task_dir / "report.html")
    assert (task_dir / "report.html").is_file()

    assert run_cli("replay", task_dir) == 0  # the clock ticked on meanwhile: not a difference
    assert "all 4 states match" in capsys.readouterr().out

    assert run_cli("replay", task_dir, "--agent", "--out", tmp_path / "again") == 0
    assert "same 3 actions and stop reason (answer)" in capsys.readouterr().out

    page.write_text(COUNTER_PAGE.replace("WORD", "pressed"), encoding="utf-8")
    assert run_cli("replay", task_dir) == 1
    printed = capsys.readouterr().out
    assert "diverged at step 1, after click('e1')" in printed
    assert "-text 'Alpha clicked'" in printed and "+text 'Alpha pressed'" in printed


def test_a_question_the_trace_does_not_hold_fails_with_a_prompt_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = read_trace(EXAMPLES / "demo-order")
    changed_goal = recorded.goal.replace("Order 2", "Order 3")
    code = run_cli("run", "--url", "bundled:demo", "--goal", changed_goal, "-k", "2", "--samples", "1",
                   "--model", f"replay:{EXAMPLES / 'demo-order'}", "--out", tmp_path)
    error = capsys.readouterr().err
    assert code == 2
    assert "holds no policy answer for this prompt" in error
    assert "--- recorded (step 1" in error and "+++ asked now" in error
    assert "-Task: Order 2 notebooks" in error and "+Task: Order 3 notebooks" in error


async def test_a_dropped_answer_is_reported_against_the_nearest_prompt(tmp_path: Path) -> None:
    source = EXAMPLES / "miniwob.enter-text.seed1"
    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    lines = (copy / TRACE_FILE).read_text().splitlines(keepends=True)
    events = [json.loads(line) for line in lines]
    dropped = next(i for i, e in enumerate(events)
                   if e["type"] == "llm_call" and e["role"] == "policy" and e["step"] == 2)
    (copy / TRACE_FILE).write_text("".join(line for i, line in enumerate(lines) if i != dropped))
    llm = ReplayLLM.from_dir(copy)
    prompt = read_trace(source).prompts[events[dropped]["prompt_hash"]]
    with pytest.raises(ReplayMismatch, match="holds no policy answer") as caught:
        await llm.complete("policy", prompt)
    # The nearest recorded policy prompt is step 1's: before anything was typed or done.
    assert "--- recorded (step 1" in str(caught.value)
    assert "+1. fill('e1', 'Jerald')" in str(caught.value)


# ------------------------------------------------------------------------------------ secrets


def test_a_typed_password_appears_in_no_file_of_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "login.html"
    page.write_text(LOGIN_PAGE, encoding="utf-8")
    script = script_file(tmp_path, ["fill('e1', 'alice')", f"fill('e2', '{SECRET}')", "click('e3')",
                                    "send_msg_to_user('signed in')"])
    out = tmp_path / "run"
    # The goal names the password before it is typed: the lines written by then are rewritten.
    assert run_cli("run", "--url", page, "--goal", f"Sign in as alice with the password {SECRET}",
                   "--strategy", "reactive", "--model", f"scripted:{script}", "--out", out,
                   "--playwright-trace", "--har") == 0
    assert run_cli("show", out / "login") == 0
    assert SECRET not in capsys.readouterr().out
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"trace.jsonl", "result.json", "report.html", "trace.zip", "network.har"} <= {p.name for p in files}
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
    trace = read_trace(out / "login")
    assert [s["choice"] for s in trace.executed_steps()][1] == "fill('e2', '********')"
    assert "Welcome, alice" in [e.name for e in trace.observation(3).elements]
    # Replaying types the mask, which the page (and the masked observation) cannot tell apart.
    assert run_cli("replay", out / "login") == 0


# --------------------------------------------------------------------------------- the report


async def test_the_report_shows_every_step_in_a_real_browser(
    session: BrowserSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("report-run")
    scripts = EXAMPLES / "scripts"
    task = UrlTask("demo-order", "bundled:demo", read_trace(EXAMPLES / "demo-order").goal)
    env = BrowserEnv(session)
    await run_task(task, ScriptedLLM.from_file(scripts / "demo-order.json"), env,
                   PlannerConfig(strategy="dreamer", k=2, horizon=1, samples=1), out, on_step=lambda _: None)
    trace = read_trace(out / "demo-order")
    report = write_report(out)  # a run directory of one task: that task's page
    assert report == out / "demo-order" / "report.html"

    await session.new_context()
    browser_page = session.page
    assert browser_page is not None
    await browser_page.goto(report.as_uri())
    steps = browser_page.locator("section.step")
    assert await steps.count() == len(trace.steps) == 4
    for index, step in enumerate(trace.steps):
        section = steps.nth(index)
        assert await section.get_attribute("data-step") == str(step["step"])
        assert await section.locator(".candidates tr.chosen code").inner_text() == step["choice"]
        assert await section.locator(".candidates tr").count() == len(step["candidates"]) + 1  # + header
        assert "Surprise" in await section.inner_text()
        recorded = step["surprise"]
        recall = "—" if recorded["recall"] is None else f"{recorded['recall']:.2f}"
        shown = await section.locator(".surprise").inner_text()
        assert f"recall {recall} ({recorded['named_changes']}/{recorded['changes']})" in shown
        loaded = await section.locator(".shot img").evaluate("img => img.complete && img.naturalWidth > 0")
        assert loaded, f"step {step['step']}: its screenshot did not load"
    assert (await browser_page.locator("#fidelity").inner_text()).startswith(
        "World model: F1 1.00 · precision 1.00 (4/4) · recall 1.00 (3/3) over 4 predicted steps")
    roles = await browser_page.locator("#roles tr td:first-child").all_inner_texts()
    assert roles == ["policy", "world_model", "verifier"]
    shot = out / "report-screenshot.png"
    await browser_page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"report screenshot kept at {shot}")
    await session.close_context()


def test_the_report_shows_a_poor_world_model_and_reads_a_trace_scored_the_old_way(tmp_path: Path) -> None:
    smollm2 = tmp_path / "smollm2"
    shutil.copytree(SMOLLM2_DIRS[-1], smollm2)  # enter-text: template echoes, an unparsed answer
    page = write_report(smollm2).read_text(encoding="utf-8")
    assert 'id="fidelity">World model: F1 <strong>0.00</strong> · precision 0.00 (0/8)' in page
    assert "1 without a usable prediction" in page and "no prediction</span>" in page
    assert "✗ a prediction (the answer was empty or could not be parsed)" in page

    # A trace recorded before precision and recall: only the score and its lists.
    old = tmp_path / "old"
    shutil.copytree(EXAMPLES / "miniwob.click-button.seed1", old)
    events = [json.loads(line) for line in (old / TRACE_FILE).read_text().splitlines()]
    for event in events:
        if event["type"] == "step" and event.get("surprise"):
            event["surprise"] = {"action": event["choice"], "score": 0.0, "matched": ["url stays"], "missed": [],
                                 "expected_url": "", "actual_url": ""}
    (old / TRACE_FILE).write_text("".join(json.dumps(e) + "\n" for e in events))
    page = write_report(old).read_text(encoding="utf-8")
    assert "recorded before precision and recall were scored" in page and "✓ url stays" in page
    assert 'id="fidelity"' not in page


# --------------------------------------------------------------------------- interrupted runs


async def test_an_interrupted_run_keeps_every_finished_event(session: BrowserSession, tmp_path: Path) -> None:
    page = tmp_path / "counter.html"
    page.write_text(COUNTER_PAGE.replace("WORD", "clicked"), encoding="utf-8")
    policy = [json.dumps({"candidates": [{"action": "click('e1')", "reason": "again"}]})] * 10
    llm = ScriptedLLM({"policy": policy}, delay_s=0.3)
    env = BrowserEnv(session)
    config = PlannerConfig(strategy="reactive", max_steps=10, repeat_limit=10)
    run = asyncio.create_task(run_task(UrlTask("counter", str(page), "click"), llm, env, config, tmp_path,
                                       on_step=lambda _: None))
    trace_file = tmp_path / "counter" / TRACE_FILE
    while not run.done() and (not trace_file.exists() or trace_file.read_text().count('"type": "step"') < 2):
        await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await session.close_context()
    trace = read_trace(tmp_path / "counter")
    assert len(trace.executed_steps()) >= 2
    assert trace.end is not None and trace.end["stop_reason"] == "interrupted"
    assert all(step["after"] < len(trace.observations) for step in trace.executed_steps())


# ---------------------------------------------------------------------------------- wm-eval


def test_wm_eval_scores_recorded_and_repredicted_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"world_model": [
        {"when": "Action:", "repeat": True,
         "answer": json.dumps(
             {"changes": "A dialog opens", "url": "", "appear": ["Thank you dialog"], "disappear": []})}
    ]}))
    assert run_cli("wm-eval", EXAMPLES / "demo-order", EXAMPLES / "miniwob.enter-text.seed1",
                   "--model", f"scripted:{wrong}") == 0
    printed = capsys.readouterr().out.splitlines()
    overall = printed[printed.index("overall") + 1:]
    assert overall[0] == "  recorded predictions: F1 1.000  precision 1.000 (6/6)  recall 1.000 (5/5)  over 6 actions"
    # Each wrong prediction claims a dialog that never opens, and names none of the real changes.
    assert overall[1] == f"  scripted:{wrong}: F1 0.000  precision 0.000 (0/6)  recall 0.000 (0/5)  over 6 actions"
    assert "    step 1 fill('e4', '2'): F1 0.000  precision 0.000 (0/1)  recall 0.000 (0/1)" in printed
