"""`forethought run --resume`: a run killed with SIGKILL mid-step goes on from its last finished step
and ends as the same run without the kill does."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.agent.answers import candidates
from traces.schema import read_trace

PAGE = """<!doctype html>
<html><head><title>Tally</title></head><body>
<button onclick="add('alpha')">Alpha</button>
<button onclick="add('beta')">Beta</button>
<p id="tally">alpha 0, beta 0</p>
<script>
  const counts = {alpha: 0, beta: 0};
  function add(name) {
    counts[name] += 1;
    document.getElementById('tally').textContent = `alpha ${counts.alpha}, beta ${counts.beta}`;
  }
</script>
</body></html>
"""
ACTIONS = ["click('e1')", "click('e2')", "click('e1')", "click('e2')"]
# The page's state (the tally) exists only in the browser: a resumed run must rebuild it by replay.
ANSWER = "send_msg_to_user('alpha 2, beta 2')"


def script(path: Path, delay: float, actions: Sequence[str] = (*ACTIONS, ANSWER)) -> Path:
    """Each step proposes the next of `actions` and a scroll, which the verifier scores 0."""
    policy = [candidates(action, "scroll(0, 200)") for action in actions]
    path.write_text(json.dumps({
        "delay_s": delay,
        "policy": policy,
        "world_model": [{"when": "", "repeat": True, "answer": json.dumps(
            {"changes": "a counter goes up", "url": "", "appear": [], "disappear": []})}],
        "verifier": [{"when": "scroll", "repeat": True, "answer": '{"score": 0.0}'},
                     {"when": "", "repeat": True, "answer": '{"score": 1.0}'}],
    }), encoding="utf-8")
    return path


def _command(args: tuple[object, ...]) -> tuple[list[str], dict[str, str]]:
    argv = [sys.executable, "-m", "agent.cli", *map(str, args)]
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}  # a checkpoint may load only the planner's own types
    return argv, env


def forethought(*args: object) -> subprocess.CompletedProcess[str]:
    """`forethought <args>`, run to its end."""
    argv, env = _command(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def start_forethought(*args: object) -> subprocess.Popen[str]:
    """`forethought <args>`, started and left running (its stderr kept for when it ends too soon)."""
    argv, env = _command(args)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def kill_after_steps(run: subprocess.Popen[str], trace_file: Path, steps: int) -> None:
    """SIGKILL `run` once `trace_file` records `steps` steps, half a second into the next one."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        if trace_file.exists() and trace_file.read_text().count('"type": "step"') >= steps:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # into the next step's model calls
    assert run.poll() is None, f"the run ended before it could be killed: {run.communicate()[1]}"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()


def run_args(page: Path, script_file: Path, out: Path) -> list[object]:
    return ["run", "--url", page, "--goal", "Click Alpha, Beta, Alpha, Beta, then report the tally.",
            "--strategy", "dreamer", "-k", "2", "--model", f"scripted:{script_file}", "--out", out]


def outcome(task_dir: Path) -> dict:
    result = json.loads((task_dir / "result.json").read_text())
    trace = read_trace(task_dir)
    return {"answer": result["answer"], "stop_reason": result["stop_reason"], "steps": result["steps"],
            "tokens": result["usage"]["total"]["total_tokens"], "calls": result["usage"]["calls"],
            "actions": [step["choice"] for step in trace.executed_steps()]}


@pytest.mark.slow
def test_a_run_killed_mid_step_resumes_to_the_same_result(tmp_path: Path) -> None:
    page = tmp_path / "tally.html"
    page.write_text(PAGE, encoding="utf-8")

    unkilled = forethought(*run_args(page, script(tmp_path / "fast.json", 0.0), tmp_path / "whole"))
    assert unkilled.returncode == 0, unkilled.stderr
    expected = outcome(tmp_path / "whole" / "tally")
    assert expected["answer"] == "alpha 2, beta 2" and expected["actions"] == [*ACTIONS, ANSWER]

    out = tmp_path / "killed"
    slow = script(tmp_path / "slow.json", 0.4)
    run = start_forethought(*run_args(page, slow, out))
    trace_file = out / "tally" / "trace.jsonl"
    kill_after_steps(run, trace_file, 2)
    assert not (out / "tally" / "result.json").exists()
    assert (out / "tally" / "checkpoint.sqlite").exists()
    with trace_file.open("ab") as file:  # as if the kill had cut a line inside a multi-byte character
        file.write('{"type": "prompt", "hash": "0", "messages": [{"role": "user", "content": "×'.encode()[:-1])

    resumed = forethought("run", "--resume", out / "tally")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "Deserializing" not in resumed.stderr
    assert outcome(out / "tally") == expected
    trace = read_trace(out / "tally")  # one valid file: one task, one end, each step once
    assert [step["step"] for step in trace.executed_steps()] == [1, 2, 3, 4, 5]
    assert trace.end is not None and trace.end["stop_reason"] == "answer"
    resume_events = [json.loads(line) for line in trace_file.read_text().splitlines() if '"type": "resume"' in line]
    assert [event["steps"] for event in resume_events] == [2]
    assert not (out / "tally" / "checkpoint.sqlite").exists()  # a finished run keeps no checkpoint

    again = forethought("run", "--resume", out)  # the run directory names its one task
    assert again.returncode == 0 and "already finished" in again.stdout


def test_resume_of_a_directory_without_a_run_says_what_to_pass(tmp_path: Path) -> None:
    result = forethought("run", "--resume", tmp_path)
    assert result.returncode == 2
    assert "nothing to resume" in result.stderr and "runs/<run-id>/<task-id>" in result.stderr


@pytest.mark.slow
def test_eval_resume_goes_on_with_a_killed_task_from_its_last_finished_step(tmp_path: Path) -> None:
    def eval_args(script_file: Path, out: Path) -> list[object]:
        return ["eval", "--suite", "miniwob", "--tasks", "click-button-sequence", "--strategy", "dreamer",
                "-k", "2", "--model", f"scripted:{script_file}", "--out", out]

    actions = ["click('e1')", "click('e2')"]  # ONE, then TWO
    whole = forethought(*eval_args(script(tmp_path / "fast.json", 0.0, actions), tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out, slow = tmp_path / "killed", script(tmp_path / "slow.json", 0.6, actions)
    run = start_forethought(*eval_args(slow, out))
    task_dir = out / "dreamer" / "miniwob.click-button-sequence.seed0"
    kill_after_steps(run, task_dir / "trace.jsonl", 1)

    resumed = forethought(*eval_args(slow, out), "--resume")  # the same options, as eval asks
    assert resumed.returncode == 0, resumed.stderr
    [record] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    [expected] = [json.loads(line) for line in (tmp_path / "whole" / "results.jsonl").read_text().splitlines()]
    assert record["status"] == expected["status"] == "success"
    assert outcome(task_dir) == outcome(tmp_path / "whole" / "dreamer" / task_dir.name)
    assert '"type": "resume"' in (task_dir / "trace.jsonl").read_text()
