"""`forethought calibrate`: thresholds fitted from recorded steps change what adaptive does on a real page."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli.common import UserError
from agent.cli.main import build_parser
from agent.config import AdaptiveSettings, PlannerConfig
from agent.evaluation.calibrate import calibrate, fit_threshold
from agent.llm.scripted import ScriptedLLM
from agent.loop import run_task
from agent.state import StepRecord
from agent.strategies.adaptive import Signals, first_decision
from agent.verifier import Score
from envs.env import BrowserEnv
from envs.tasks import UrlTask
from world_model.surprise import Surprise

COUNTER_PAGE = """<!doctype html>
<html><head><title>Counter</title></head><body>
<p id="status">Nothing clicked yet.</p>
<button onclick="count('Alpha')">Alpha</button>
<button onclick="count('Gamma')">Gamma</button>
<script>
  window.clicks = {Alpha: 0, Gamma: 0};
  function count(name) {
    window.clicks[name] += 1;
    document.getElementById('status').textContent = name + ' clicked ' + window.clicks[name] + ' times';
  }
</script>
</body></html>
"""


def record(step: int, choice: str, surprise: float | None, failed_before: bool = False) -> dict[str, Any]:
    """A recorded step where the verifier chose between the policy's first candidate 'a' and 'b'."""
    return StepRecord(
        step=step, observation={"url": "http://127.0.0.1/", "last_action_error": "timeout" if failed_before else None},
        candidates=["a", "b"], scores={"a": Score(0.5), "b": Score(0.5 if choice == "a" else 1.0)}, choice=choice,
        surprise=Surprise(choice, surprise) if surprise is not None else None,
    ).to_dict()


def write_runs(root: Path) -> Path:
    """Two recorded tasks: after a surprise of 1/3 the verifier overrode the policy; after none it did not."""
    third = 0.3333
    steps = [record(1, "a", 0.0), record(2, "a", third), record(3, "b", 0.0), record(4, "a", third),
             record(5, "b", None)]
    task_a = root / "run1" / "task-a"
    task_a.mkdir(parents=True)
    (task_a / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    # The second task as a trace (steps.jsonl beside it must not be counted twice).
    task_b = root / "run1" / "task-b"
    task_b.mkdir()
    trace_steps = [record(1, "a", third), record(2, "b", None), record(3, "b", 0.0, failed_before=True)]
    events = [{"type": "task"}, *({"type": "step", **s, "before": 0, "after": 1} for s in trace_steps), {"type": "end"}]
    (task_b / "trace.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (task_b / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in trace_steps))
    return root / "run1"


def calibrate_cli(argv: list[str]) -> int:
    args = build_parser("calibrate").parse_args(argv)
    return asyncio.run(args.handler(args))


def test_calibrate_fits_the_surprise_threshold_from_steps_and_traces(tmp_path: Path) -> None:
    settings, lines = calibrate([write_runs(tmp_path)])

    # Examples (previous surprise, verifier overrode the policy): task a (0,F) (1/3,T) (0,F) (1/3,T);
    # task b (1/3,T) and a failed action (1.0,T). The cut that separates them is 1/3.
    assert settings.surprise_hard == 0.3333
    assert lines[0] == "surprise_hard: fitted 0.3333 from 6 steps (balanced accuracy +1.00)"
    assert settings.agreement_easy == AdaptiveSettings().agreement_easy  # no adaptive runs recorded
    assert lines[1].startswith("agreement_easy: kept 0.66 (0 steps")
    assert settings.fitted_from is not None and "8 steps of 2 tasks" in settings.fitted_from


@pytest.mark.parametrize("examples, current, above, expected", [
    ([(0.2, False), (0.3, False), (0.6, True), (0.9, True)], 0.5, True, 0.6),
    ([(1.0, False), (1.0, False), (0.33, True), (0.67, True)], 0.5, False, 1.0),  # easy at or above the cut
    ([(0.2, False), (0.6, True)], 0.5, True, 0.5),  # too few examples: kept
    ([(0.5, False)] * 4 + [(1.0, False)], 1.0, False, 0.5),  # never paid: every step was easy
    ([(0.3, False)] * 4 + [(1.0, False)], 0.5, True, 1.01),  # never paid: no surprise is hard
    ([(0.5, True)] * 4 + [(1.0, True)], 0.66, False, 1.01),  # always paid: no step is easy
    ([(0.5, False)] * 4 + [(1.0, True)], 1.0, False, 1.0),  # one of five paid off: too few to fit
])
def test_fit_threshold(examples: list, current: float, above: bool, expected: float) -> None:
    assert fit_threshold(examples, current, paid_off_above=above)[0] == expected


def adaptive_step(decisions: list[tuple[str, str]]) -> dict[str, Any]:
    return {"step": 1, "candidates": ["a", "b"], "scores": {"a": 0.5, "b": 0.5}, "choice": "a",
            "adaptive": [{"mode": mode, "why": why, "signals": {"agreement": 0.5, "spread": 0.0}}
                         for mode, why in decisions]}


@pytest.mark.parametrize("settled, expected", [(3, True), (1, False)])
def test_calibrate_turns_rerank_first_on_only_when_rerank_settles_most_disagreements(
    tmp_path: Path, settled: int, expected: bool
) -> None:
    disagree = ("rerank", "proposals disagree (agreement 0.50 < 1.00 on a new page)")
    steps = [adaptive_step([disagree]) for _ in range(settled)]
    steps += [adaptive_step([disagree, ("dreamer", "the verifier is unsure")]) for _ in range(4 - settled)]
    # agreeing: not counted
    steps.append(adaptive_step([("rerank", "the top action is irreversible (click on 'Buy')")]))
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))

    settings, lines = calibrate([tmp_path], AdaptiveSettings(rerank_first=not expected))

    assert settings.rerank_first is expected
    assert lines[4] == f"rerank_first: fitted {str(expected).lower()}: rerank settled {settled} of 4 disagreements"
    (tmp_path / "task" / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps[:3]))
    kept, kept_lines = calibrate([tmp_path], AdaptiveSettings(rerank_first=not expected))
    assert kept.rerank_first is not expected and kept_lines[4].startswith("rerank_first: kept")


def write_eval(root: Path, reactive_solved: dict[str, bool], adaptive_solved: dict[str, bool]) -> Path:
    """An eval run (RUN/STRATEGY/TASK, results.jsonl) whose adaptive steps, on new pages, disagreed and
    had dreamer change the policy's choice."""
    rows = []
    for strategy, solved in (("reactive", reactive_solved), ("adaptive", adaptive_solved)):
        for task, success in solved.items():
            rows.append({"strategy": strategy, "task_id": task, "success": success})
            if strategy == "adaptive":
                step = {"step": 1, "candidates": ["a", "b"], "scores": {"a": 0.2, "b": 0.9}, "choice": "b",
                        "adaptive": [{"mode": "dreamer", "why": "proposals disagree",
                                      "signals": {"agreement": 0.5, "new_page": True}}]}
                (root / strategy / task).mkdir(parents=True)
                (root / strategy / task / "steps.jsonl").write_text(json.dumps(step) + "\n")
    (root / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows) + '{"torn')
    return root


def test_a_changed_choice_pays_off_only_where_it_won_a_task_one_call_lost(tmp_path: Path) -> None:
    tasks = [f"t{i}" for i in range(6)]
    # Dreamer changed the choice everywhere, but reactive solved the same tasks: compute never paid.
    first_two = {t: i < 2 for i, t in enumerate(tasks)}
    same = write_eval(tmp_path / "same", first_two, dict(first_two))
    settings, lines = calibrate([same], AdaptiveSettings())
    assert settings.agreement_easy_new_page == 0.5  # a disagreeing step on a new page is now easy
    assert lines[2] == "agreement_easy_new_page: fitted 0.5 from 6 steps (compute paid off on none of them)"
    assert settings.agreement_easy == AdaptiveSettings().agreement_easy  # no step on a known page

    # Where adaptive won tasks that reactive lost, the same steps paid off: disagreement stays hard.
    won = write_eval(tmp_path / "won", {t: False for t in tasks}, {t: i < 3 for i, t in enumerate(tasks)})
    settings, lines = calibrate([won], AdaptiveSettings())
    assert settings.agreement_easy_new_page == 1.0
    assert lines[2] == "agreement_easy_new_page: kept 1 (no cut separates the 3 steps where compute paid off " \
                       "from the 3 where not)"


def test_calibrate_without_recorded_steps_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no recorded steps"):
        calibrate_cli(["calibrate", str(tmp_path), "--out", str(tmp_path / "a.json")])


def two_step_script(alpha: str, gamma: str) -> dict[str, Any]:
    """Step 1 is hard and its outcome a little surprising (1/3: of its two claims the status text came
    true and button Alpha did not disappear, and it named the one real change: F1 2/3); on step 2
    both sampled answers agree on finishing."""
    done = "send_msg_to_user('done')"
    return {
        "policy": [json.dumps({"candidates": [{"action": a, "reason": ""}]}) for a in (alpha, gamma, done, done)],
        "world_model": [
            {"when": f"Action: {alpha}", "answer": json.dumps({"changes": "Alpha shows 1", "url": "", "appear": [],
                                                               "disappear": []})},
            {"when": f"Action: {gamma}", "answer": json.dumps({"changes": "Gamma shows 1", "url": "",
                                                               "appear": ["Gamma clicked 1 times"],
                                                               "disappear": ["button 'Alpha'"]})},
            {"when": f"Action: {done}", "answer": json.dumps({"changes": "answered", "url": "", "appear": [],
                                                              "disappear": []})},
        ],
        "verifier": [
            {"when": "(No prediction", "answer": json.dumps({"reason": "?", "verdict": "on track"}), "repeat": True},
            {"when": "Predicted outcome: Alpha", "answer": json.dumps({"reason": "no", "verdict": "wrong"})},
            {"when": "Predicted outcome: Gamma", "answer": json.dumps({"reason": "yes", "verdict": "on track"})},
            {"when": "Predicted outcome: answered", "answer": json.dumps({"reason": "done", "verdict": "complete"})},
        ],
    }


async def test_calibrated_thresholds_change_adaptives_choice(env: BrowserEnv, tmp_path: Path) -> None:
    page_path = tmp_path / "counter.html"
    page_path.write_text(COUNTER_PAGE, encoding="utf-8")
    obs, _ = await env.reset(UrlTask("ids", str(page_path), ""))
    alpha, gamma = (f"click('{e.id}')" for e in obs.elements if e.role == "button")
    settings_file = tmp_path / "adaptive.json"
    assert await asyncio.to_thread(calibrate_cli, ["calibrate", str(write_runs(tmp_path / "runs")),
                                                   "--out", str(settings_file)]) == 0

    modes = {}
    for name, settings in (("default", AdaptiveSettings()), ("calibrated", AdaptiveSettings.load(settings_file))):
        task = UrlTask(name, str(page_path), "Click Gamma, then say done.")
        result = await run_task(task, ScriptedLLM(two_step_script(alpha, gamma)), env,
                                PlannerConfig(strategy="adaptive", adaptive=settings), tmp_path / "out",
                                on_step=lambda _: None)
        recorded = (tmp_path / "out" / name / "steps.jsonl").read_text().splitlines()
        first, second = (json.loads(line) for line in recorded)
        assert first["choice"] == gamma and first["surprise"]["score"] == 0.3333 and result.answer == "done"
        modes[name] = second["adaptive"][0]["mode"]

    # By default a surprise of 1/3 is below 0.5, so the agreed step is easy; the runs taught otherwise.
    assert modes == {"default": "reactive", "calibrated": "beam"}


def test_the_shipped_smollm2_thresholds_act_at_once_unless_a_step_is_risky() -> None:
    # bench/adaptive-smollm2-135m.json is what the README's frontier figures were measured with.
    settings = AdaptiveSettings.load(Path(__file__).parents[3] / "bench" / "adaptive-smollm2-135m.json")
    after_a_failed_action = Signals(agreement=0.5, new_page=True, surprise=1.0, last_mode="reactive")
    assert first_decision(after_a_failed_action, settings).plan.mode == "reactive"
    risky = Signals(agreement=1.0, risky="click on button 'Place order'")
    assert first_decision(risky, settings).plan.mode == "rerank"
