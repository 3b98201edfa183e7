"""Outcomes the page tells without a model (world_model/known_outcomes.py), checked against what the real
browser does, and how the planner acts on them: no model is asked, and a greedy proposal known to change
nothing loses the overrule margin's protection."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import PlannerConfig
from agent.llm.scripted import ScriptedLLM
from agent.loop import run_task
from agent.risk import gate, preference_order
from agent.verifier import Score
from envs.env import BrowserEnv
from envs.tasks import UrlTask
from envs.types import Observation
from tests.agent.answers import candidates
from world_model.known_outcomes import FAILS, NO_CHANGE, known_outcome
from world_model.surprise import measure_surprise
from world_model.world_model import LLMWorldModel

FORM_PAGE = """<!doctype html>
<html><head><title>Form</title></head><body>
<label>Name <input id="name"></label>
<label>Password <input id="pw" type="password"></label>
<select id="size"><option>Small</option><option>Large</option></select>
<label><input type="radio" name="r" id="radio"> Red</label>
<label><input type="checkbox" id="box"> Wrap</label>
<a href="#top">Top</a>
<button onclick="window.sent.push(document.getElementById('name').value)">Submit</button>
<script>window.sent = [];</script>
</body></html>
"""


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "form.html"
    path.write_text(FORM_PAGE, encoding="utf-8")
    return path


def by_name(obs: Observation) -> dict[str, str]:
    """Each element's name (the select's role, it has none) -> its id."""
    return {e.name or e.role: e.id for e in obs.elements if e.id is not None}


def tree(obs: Observation) -> list[tuple[Any, ...]]:
    return [(e.id, e.role, e.name, e.value, tuple(e.states)) for e in obs.elements]


# (actions run first, the action judged, what the page tells) with element names for ids.
CASES = [
    ([], "fill({Submit}, 'x')", FAILS),
    ([], "fill({Wrap}, 'x')", FAILS),
    ([], "fill({Top}, 'x')", FAILS),
    ([], "select_option({Red}, 'Red')", FAILS),
    (["fill({Name}, 'Ada')"], "fill({Name}, 'Ada')", NO_CHANGE),
    (["fill({Password}, 'pw1')"], "fill({Password}, 'pw1')", NO_CHANGE),  # masked in the page: history tells
    (["fill({Name}, 'Ada')", "click({Wrap})"], "fill({Name}, 'Ada')", NO_CHANGE),  # the field shows it
    (["fill({Password}, 'pw1')", "fill({Name}, 'Ada')"], "fill({Password}, 'pw1')", NO_CHANGE),  # its last fill
    (["fill({Password}, 'pw1')", "fill({Name}, 'Ada')"], "fill({Password}, 'pw2')", None),
    (["select_option({combobox}, 'Large')"], "select_option({combobox}, 'Large')", NO_CHANGE),
    (["select_option({combobox}, 'Large')"], "click({Large})", NO_CHANGE),
    (["focus({Name})"], "focus({Name})", NO_CHANGE),
    (["fill({Name}, 'Ada')"], "fill({Name}, 'Bob')", None),
    (["click({Wrap})"], "click({Wrap})", None),  # a click may toggle
    ([], "select_option({Large}, 'Large')", None),  # an option is selected in its list
    ([], "click({Submit})", None),
]


@pytest.mark.parametrize(("before", "action", "told"), CASES)
async def test_what_the_page_tells_is_what_the_browser_does(
    env: BrowserEnv, page_path: Path, before: list[str], action: str, told: str | None
) -> None:
    obs, _ = await env.reset(UrlTask("form", str(page_path), "Fill the form"))
    ids = {name: f"'{element_id}'" for name, element_id in by_name(obs).items()}
    history = []
    for setup in before:
        obs, *_ = await env.step(setup.format(**ids))
        assert obs.last_action_error is None
        history.append(setup.format(**ids))
    action = action.format(**ids)

    known = known_outcome(action, obs, history)
    imagined = await LLMWorldModel(ScriptedLLM({})).imagine("Fill the form", obs, action, history=history) \
        if known else None  # an empty script: any model call would fail
    after, *_ = await env.step(action)

    assert (known[0] if known else None) == told
    if told == FAILS:
        assert after.last_action_error, f"{action} ran without an error"
    if told == NO_CHANGE:
        assert after.last_action_error is None and tree(after) == tree(obs)
    if imagined:  # the foretold outcome is what happened: no surprise
        assert imagined[0].prediction.known == told
        assert measure_surprise(action, imagined[0].prediction, obs, after).score == 0.0


def prediction(changes: str) -> str:
    return json.dumps({"changes": changes, "url": "", "appear": [], "disappear": []})


async def test_a_greedy_proposal_known_to_change_nothing_gives_way_without_the_margin(
    env: BrowserEnv, page_path: Path, tmp_path: Path
) -> None:
    obs, _ = await env.reset(UrlTask("form", str(page_path), ""))
    ids = by_name(obs)
    fill, submit = f"fill('{ids['Name']}', 'Ada')", f"click('{ids['Submit']}')"
    script = {
        # Both steps the policy puts the fill first: at step 2 it has just run.
        "policy": [candidates(fill, submit), candidates(fill, submit), candidates("send_msg_to_user('sent')")],
        "world_model": [
            {"when": f"Action: {fill}", "answer": prediction("The Name field holds Ada"), "repeat": True},
            {"when": f"Action: {submit}", "answer": prediction("The form is sent"), "repeat": True},
            {"when": "Action: send_msg_to_user", "answer": prediction("The agent answers"), "repeat": True},
        ],
        "verifier": [
            {"when": "Predicted outcome: The Name field", "answer": json.dumps(
                {"reason": "the name is typed", "verdict": "on track"}), "repeat": True},
            {"when": "Predicted outcome: The form is sent", "answer": json.dumps(
                {"reason": "sent", "verdict": "on track"}), "repeat": True},
            {"when": "Predicted outcome: The agent answers", "answer": json.dumps(
                {"reason": "done", "verdict": "complete"}), "repeat": True},
        ],
    }
    llm = ScriptedLLM(script)
    config = PlannerConfig(strategy="dreamer", k=2, samples=1, overrule_margin=0.95)
    result = await run_task(UrlTask("form", str(page_path), "Send the form with the name Ada."), llm, env, config,
                            tmp_path)

    page = env.session.page
    assert page is not None
    assert await page.evaluate("window.sent") == ["Ada"]
    assert result.stop_reason == "answer"
    steps = [json.loads(line) for line in (tmp_path / "form" / "steps.jsonl").read_text().splitlines()]
    first, second = steps[0], steps[1]
    assert first["choice"] == fill and not first["overruled"]  # 0.5 against 0.5: the margin keeps the greedy
    assert second["greedy"] == fill and second["choice"] == submit and second["overruled"]
    assert second["imagined"][fill][0]["prediction"]["known"] == NO_CHANGE
    assert second["scores"][fill]["known"] == NO_CHANGE and second["scores"][fill]["value"] == 0.0
    # Step 1 imagined and scored both; step 2 only the submit; step 3 the answer.
    assert llm.used("world_model") == 4 and llm.used("verifier") == 4


def test_known_candidates_come_last_and_a_known_greedy_one_keeps_no_margin() -> None:
    greedy, a, b = "fill('e1', 'x')", "click('e2')", "fill('e3', 'y')"
    scores = {greedy: Score(0.0, known=NO_CHANGE), a: Score(0.1), b: Score(0.0, known=FAILS)}
    assert preference_order([greedy, a, b], scores, margin=0.95) == [a, greedy, b]
    assert preference_order([greedy, b], {greedy: Score(0.0, known=NO_CHANGE), b: scores[b]}, 0.95) == [greedy, b]
    scores = {greedy: Score(0.5), a: Score(0.0, known=FAILS), b: Score(0.4)}
    assert preference_order([greedy, a, b], scores, margin=0.95) == [greedy, b, a]


def test_the_risk_gate_never_runs_a_known_candidate_instead_of_an_irreversible_one() -> None:
    submit, fill = "click('e3')", "fill('e1', 'x')"  # Submit is irreversible; the fill just ran
    risky = {submit: "submit"}
    scores = {submit: Score(0.3), fill: Score(0.0, known=NO_CHANGE)}
    assert gate([submit, fill], scores, risky, safe=False, margin=0.25).choice == submit  # 0.3 >= 0 + 0.25
    held = gate([submit, fill], {**scores, submit: Score(0.1)}, risky, safe=False, margin=0.25)
    assert held.choice is None and held.note is not None and "no reversible candidate" in held.note
