"""revise, beam and adaptive on a real page whose buttons count their clicks (which actions reached the
browser), with scripted models keyed on what each prompt contains."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.config import AdaptiveSettings, PlannerConfig
from agent.llm.scripted import ScriptedLLM
from agent.loop import RunResult, run_task
from agent.strategies.adaptive import Signals, first_decision, propose_by_vote, step_signals
from envs.env import BrowserEnv
from envs.rendering import render_text
from envs.tasks import UrlTask
from envs.types import Observation
from tests.agent.answers import candidates

COUNTER_PAGE = """<!doctype html>
<html><head><title>Click counter</title></head><body>
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
GOAL = "Click Beta, then Gamma."


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "counter.html"
    path.write_text(COUNTER_PAGE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def buttons(env: BrowserEnv, page_path: Path) -> dict[str, str]:
    """Button name -> its click action, as the observation assigns ids."""
    obs, _ = await env.reset(UrlTask("ids", str(page_path), ""))
    return {e.name: f"click('{e.id}')" for e in obs.elements if e.role == "button"}


async def clicks(env: BrowserEnv) -> dict[str, int]:
    page = env.session.page
    assert page is not None
    return await page.evaluate("window.clicks")


def prediction(changes: str, url: str = "", appear: Sequence[str] = ()) -> str:
    return json.dumps({"changes": changes, "url": url, "appear": list(appear), "disappear": []})


def verdict(word: str, reason: str = "") -> str:
    return json.dumps({"reason": reason or f"looks {word}", "verdict": word})


async def run(
    env: BrowserEnv, page_path: Path, llm: ScriptedLLM, out: Path, **config: Any
) -> tuple[RunResult, list[dict]]:
    result = await run_task(UrlTask("counter", str(page_path), GOAL), llm, env, PlannerConfig(**config), out,
                            on_step=lambda _: None)
    lines = (out / "counter" / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    return result, [json.loads(line) for line in lines]


# ------------------------------------------------------------------------- the overrule margin


@pytest.mark.parametrize("beta_verdicts, margin, runs", [
    (["complete", "on track", "on track"], 0.2, "Alpha"),  # Beta leads by 0.17: not enough
    (["complete", "complete", "on track"], 0.2, "Beta"),  # Beta leads by 0.33
    (["complete", "on track", "on track"], 0.0, "Beta"),  # no margin: any lead overrules
    (["on track", "on track", "on track"], 0.0, "Alpha"),  # a tie goes to the greedy candidate
    (["complete", "complete", "complete"], 0.5, "Beta"),  # a lead of exactly the margin overrules
])
async def test_a_verdict_overrules_the_greedy_candidate_only_by_the_margin(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path,
    beta_verdicts: list[str], margin: float, runs: str,
) -> None:
    alpha, beta = buttons["Alpha"], buttons["Beta"]
    llm = ScriptedLLM({
        "policy": [candidates(alpha, beta)],  # Alpha: the greedy candidate
        "world_model": [{"when": f"Action: {alpha}", "answer": prediction("Alpha shows 1")},
                        {"when": f"Action: {beta}", "answer": prediction("Beta shows 1")}],
        "verifier": [*({"when": "Predicted outcome: Alpha shows 1", "answer": verdict("on track")} for _ in range(3)),
                     *({"when": "Predicted outcome: Beta shows 1", "answer": verdict(v)} for v in beta_verdicts)],
    })
    _, [step] = await run(env, page_path, llm, tmp_path, strategy="dreamer", k=2, samples=3, max_steps=1,
                          overrule_margin=margin)

    assert step["scores"][alpha]["value"] == 0.5
    assert step["choice"] == buttons[runs] and await clicks(env) == {"Alpha": runs == "Alpha", "Beta": runs == "Beta",
                                                                     "Gamma": 0}
    assert step["greedy"] == alpha and step["overruled"] == (runs == "Beta")


def test_the_overrule_margin_is_checked() -> None:
    with pytest.raises(ValueError, match="overrule_margin must be between 0 and 1, got 1.5"):
        PlannerConfig(overrule_margin=1.5)


# ------------------------------------------------------------------------------------------ beam


async def test_beam_runs_the_first_step_of_the_best_path_even_when_that_step_scores_worse_alone(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta, gamma = buttons["Alpha"], buttons["Beta"], buttons["Gamma"]
    llm = ScriptedLLM({
        "policy": [
            candidates(alpha, beta),  # the real proposal: the policy ranks Alpha first
            {"when": f"1. {alpha} ->", "answer": candidates(alpha)},  # next actions on Alpha's imagined page
            {"when": f"1. {beta} ->", "answer": candidates(gamma)},
        ],
        "world_model": [
            {"when": f"Action: {alpha}", "answer": prediction("Alpha shows 1"), "repeat": True},
            {"when": f"Action: {beta}", "answer": prediction("Beta shows 1")},
            {"when": f"Action: {gamma}", "answer": prediction("Gamma shows 1")},
        ],
        "verifier": [  # two-step trajectories first: they contain their first step's text too
            {"when": "Predicted outcome: Gamma shows 1", "answer": verdict("complete")},
            {"when": "Then (imagined step 2)", "answer": verdict("wrong")},  # Alpha twice
            {"when": "Predicted outcome: Alpha shows 1", "answer": verdict("on track")},
            {"when": "Predicted outcome: Beta shows 1", "answer": verdict("wrong", "Beta alone is not the goal")},
        ],
    })
    result, [step] = await run(env, page_path, llm, tmp_path, strategy="beam", k=2, beam_width=2, horizon=2,
                               samples=1, max_steps=1)

    assert await clicks(env) == {"Alpha": 0, "Beta": 1, "Gamma": 0}
    assert step["mode"] == "beam" and step["choice"] == beta
    paths = {tuple(p["actions"]): p for p in step["search"]}
    assert paths[(alpha,)]["value"] == 0.5 and paths[(beta,)]["value"] == 0.0  # alone, Beta is worse
    assert paths[(beta, gamma)]["step_values"] == [0.0, 1.0] and paths[(beta, gamma)]["in_final_beam"]
    assert paths[(alpha, alpha)]["value"] == 0.0
    assert {a: s["value"] for a, s in step["scores"].items()} == {beta: 1.0, alpha: 0.0}
    assert [s["action"] for s in step["imagined"][beta]] == [beta, gamma]
    assert result.usage["calls"] == 3 + 4 + 4  # policy 1 + 2 expansions, 4 predictions, 4 scorings


async def test_beam_asks_no_model_about_a_first_action_the_page_says_fails_and_never_runs_it(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    beta = buttons["Beta"]
    fill_alpha = buttons["Alpha"].replace("click(", "fill(").replace("')", "', 'x')")  # a button takes no text
    llm = ScriptedLLM({
        "policy": [candidates(fill_alpha, beta)],  # the greedy candidate fails
        "world_model": [{"when": f"Action: {beta}", "answer": prediction("Beta shows 1")}],
        "verifier": [{"when": "Predicted outcome: Beta shows 1", "answer": verdict("wrong")}],
    })
    result, [step] = await run(env, page_path, llm, tmp_path, strategy="beam", k=2, beam_width=2, horizon=1,
                               samples=1, max_steps=1, overrule_margin=0.95)

    assert await clicks(env) == {"Alpha": 0, "Beta": 1, "Gamma": 0}  # the fill never ran; Beta, judged wrong, did
    assert step["choice"] == beta and step["overruled"]
    assert step["scores"][fill_alpha]["known"] == "fails" and step["imagined"][fill_alpha][0]["prediction"]["known"]
    paths = {tuple(p["actions"]): p for p in step["search"]}
    assert paths[(fill_alpha,)]["end"].startswith("known from the page")
    assert result.usage["calls"] == 1 + 1 + 1  # the proposal; Beta's prediction and score


@pytest.mark.parametrize("aggregate, winner", [("last", "Beta"), ("min", "Gamma")])
async def test_beam_keeps_the_width_best_paths_and_values_them_by_the_chosen_aggregate(
    aggregate: str, winner: str, env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta, gamma = buttons["Alpha"], buttons["Beta"], buttons["Gamma"]
    done = "send_msg_to_user('done')"
    llm = ScriptedLLM({
        "policy": [candidates(gamma, beta, alpha),
                   {"when": f"1. {beta} ->", "answer": candidates(done)},
                   {"when": f"1. {gamma} ->", "answer": candidates(alpha)}],
        "world_model": [
            {"when": f"Action: {alpha}", "answer": prediction("Alpha shows 1"), "repeat": True},
            {"when": f"Action: {beta}", "answer": prediction("Beta shows 1")},
            {"when": f"Action: {gamma}", "answer": prediction("Gamma shows 1")},
            {"when": f"Action: {done}", "answer": prediction("The agent answers")},
        ],
        "verifier": [
            {"when": f"Then (imagined step 2): {done}", "answer": verdict("complete")},
            {"when": f"Then (imagined step 2): {alpha}", "answer": verdict("on track")},
            {"when": "Predicted outcome: Alpha shows 1", "answer": verdict("wrong")},
            {"when": "Predicted outcome: Beta shows 1", "answer": verdict("wrong")},
            {"when": "Predicted outcome: Gamma shows 1", "answer": verdict("on track")},
        ],
    })
    # Depth 1: Gamma 0.5, Beta 0, Alpha 0; width 2 keeps Gamma and Beta (ties keep the policy's order).
    # Depth 2: Beta -> done scores [0, 1], Gamma -> Alpha [0.5, 0.5]: "last" prefers Beta, "min" Gamma.
    result, [step] = await run(env, page_path, llm, tmp_path, strategy="beam", k=3, beam_width=2, horizon=2,
                               samples=1, beam_aggregate=aggregate, max_steps=1)

    paths = {tuple(p["actions"]): p for p in step["search"]}
    assert set(paths) == {(gamma,), (beta,), (alpha,), (beta, done), (gamma, alpha)}  # Alpha never expanded
    assert paths[(beta, done)]["step_values"] == [0.0, 1.0] and paths[(beta, done)]["end"] == "answers the user"
    assert step["choice"] == buttons[winner] and alpha not in step["scores"]
    assert await clicks(env) == {"Alpha": 0, "Beta": int(winner == "Beta"), "Gamma": int(winner == "Gamma")}
    assert result.usage["calls"] == 3 + 5 + 5


@pytest.mark.parametrize("beta_then_gamma, runs", [("on track", "Alpha"), ("complete", "Beta")])
async def test_beam_overrules_a_pruned_greedy_candidate_only_by_the_margin_over_its_best_path(
    beta_then_gamma: str, runs: str, env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta, gamma = buttons["Alpha"], buttons["Beta"], buttons["Gamma"]
    llm = ScriptedLLM({
        "policy": [candidates(alpha, beta), {"when": f"1. {beta} ->", "answer": candidates(gamma)}],
        "world_model": [{"when": f"Action: {alpha}", "answer": prediction("Alpha shows 1")},
                        {"when": f"Action: {beta}", "answer": prediction("Beta shows 1")},
                        {"when": f"Action: {gamma}", "answer": prediction("Gamma shows 1")}],
        "verifier": [
            {"when": f"Then (imagined step 2): {gamma}", "answer": verdict(beta_then_gamma)},
            {"when": "Predicted outcome: Alpha shows 1", "answer": verdict("on track")},
            {"when": "Predicted outcome: Beta shows 1", "answer": verdict("complete")},
        ],
    })
    # Depth 1: Beta 1.0, Alpha (greedy) 0.5; width 1 keeps Beta only. Depth 2: Beta -> Gamma scores
    # 0.5 (a tie with Alpha's 0.5: Alpha runs) or 1.0 (0.5 more: Beta runs).
    _, [step] = await run(env, page_path, llm, tmp_path, strategy="beam", k=2, beam_width=1, horizon=2,
                          samples=1, max_steps=1)

    paths = {tuple(p["actions"]): p for p in step["search"]}
    assert not paths[(alpha,)]["in_final_beam"] and paths[(beta, gamma)]["in_final_beam"]
    assert step["scores"][alpha]["value"] == 0.5  # the pruned greedy candidate's best path
    assert step["choice"] == buttons[runs] and step["overruled"] == (runs == "Beta")


# ---------------------------------------------------------------------------------------- revise


async def test_revise_changes_its_action_after_the_verifiers_critique(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    alpha, gamma = buttons["Alpha"], buttons["Gamma"]
    llm = ScriptedLLM({
        "policy": [
            candidates(alpha),
            # The revision is answered only when the prompt shows Alpha's outcome and the critique.
            {"when": "Critique: Alpha does not help; Gamma is the button to press",
             "answer": json.dumps({"action": gamma, "reason": "the reviewer says Gamma"})},
        ],
        "world_model": [
            {"when": f"Action: {alpha}", "answer": prediction("Alpha shows 1")},
            {"when": f"Action: {gamma}", "answer": prediction("Gamma shows 1")},
        ],
        "verifier": [
            {"when": "Predicted outcome: Alpha shows 1",
             "answer": verdict("wrong", "Alpha does not help; Gamma is the button to press")},
            {"when": "Predicted outcome: Gamma shows 1", "answer": verdict("complete")},
        ],
    })
    result, [step] = await run(env, page_path, llm, tmp_path, strategy="revise", revisions=3, samples=1, max_steps=1)

    assert await clicks(env) == {"Alpha": 0, "Beta": 0, "Gamma": 1}
    assert step["candidates"] == [alpha, gamma] and step["choice"] == gamma
    assert step["reasons"][gamma] == "the reviewer says Gamma"
    assert step["revision_note"] == "version 2 scores complete: nothing to revise"
    assert result.usage["calls"] == 2 + 2 + 2  # no third version: the second one is complete


async def test_revise_keeps_an_earlier_version_when_the_revisions_score_worse(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta, gamma = buttons["Alpha"], buttons["Beta"], buttons["Gamma"]
    revision = lambda action: json.dumps({"action": action, "reason": "try this"})  # noqa: E731
    llm = ScriptedLLM({
        "policy": [candidates(beta), revision(alpha), revision(gamma), revision(beta)],
        "world_model": [{"when": f"Action: {b}", "answer": prediction(f"{n} shows 1")}
                        for n, b in (("Alpha", alpha), ("Beta", beta), ("Gamma", gamma))],
        "verifier": [
            {"when": "Predicted outcome: Beta shows 1", "answer": verdict("on track")},
            {"when": "Predicted outcome: Alpha shows 1", "answer": verdict("wrong")},
            {"when": "Predicted outcome: Gamma shows 1", "answer": verdict("wrong", "Gamma comes after Beta")},
        ],
    })
    _, [step] = await run(env, page_path, llm, tmp_path, strategy="revise", revisions=5, samples=1, max_steps=1)

    assert step["candidates"] == [beta, alpha, gamma]  # the last (worst) version is not the one kept
    assert {a: s["value"] for a, s in step["scores"].items()} == {beta: 0.5, alpha: 0.0, gamma: 0.0}
    assert step["choice"] == beta and await clicks(env) == {"Alpha": 0, "Beta": 1, "Gamma": 0}
    assert step["revision_note"] == f"the policy kept version 1 ({beta})"  # it proposed Beta again


# -------------------------------------------------------------------------------------- adaptive


THREE_SAMPLES = AdaptiveSettings(proposal_samples=3)  # the scripts below answer each vote three times


def adaptive_script(buttons: dict[str, str], gamma_url: str = "", gamma_appear: str = "Gamma clicked 1 times",
                    ) -> dict[str, Any]:
    """Step 1 (new page, the sampled proposals disagree) is hard; step 2 (known page, all answers
    agree on finishing) is easy. `gamma_url` and `gamma_appear` let Gamma's prediction be wrong."""
    alpha, beta, gamma = buttons["Alpha"], buttons["Beta"], buttons["Gamma"]
    done = "send_msg_to_user('done')"
    return {
        "policy": [candidates(alpha, beta), candidates(beta, gamma), candidates(gamma),  # step 1: n=3 answers
                   candidates(done), candidates(done), candidates(done)],  # step 2
        "world_model": [
            {"when": f"Action: {alpha}", "answer": prediction("Alpha shows 1")},
            {"when": f"Action: {beta}", "answer": prediction("Beta shows 1")},
            {"when": f"Action: {gamma}", "answer": prediction("Gamma shows 1", url=gamma_url,
                                                                 appear=[gamma_appear])},
            {"when": f"Action: {done}", "answer": prediction("The agent answers")},
        ],
        "verifier": [
            # Without imagination every candidate looks equally good: rerank cannot decide.
            {"when": "(No prediction", "answer": verdict("on track"), "repeat": True},
            {"when": "Predicted outcome: Alpha shows 1", "answer": verdict("wrong")},
            {"when": "Predicted outcome: Beta shows 1", "answer": verdict("on track")},
            {"when": "Predicted outcome: Gamma shows 1", "answer": verdict("complete")},
            {"when": "Predicted outcome: The agent answers", "answer": verdict("complete")},
        ],
    }


@pytest.mark.parametrize("rerank_first", [False, True])
async def test_adaptive_spends_one_call_on_an_easy_step_and_more_on_a_hard_one(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path, rerank_first: bool
) -> None:
    llm = ScriptedLLM(adaptive_script(buttons))
    settings = THREE_SAMPLES.model_copy(update={"rerank_first": rerank_first})
    result, (hard, easy) = await run(env, page_path, llm, tmp_path, strategy="adaptive", adaptive=settings)

    assert await clicks(env) == {"Alpha": 0, "Beta": 0, "Gamma": 1}
    assert (result.stop_reason, result.answer) == ("answer", "done")
    assert hard["adaptive"][0]["signals"]["new_page"] and hard["adaptive"][0]["signals"]["agreement"] == 0.3333
    disagree = "proposals disagree (agreement 0.33 < 1.00 on a new page)"
    if rerank_first:  # the cascade: rerank cannot decide (spread 0), so the candidates are imagined
        assert [d["mode"] for d in hard["adaptive"]] == ["rerank", "dreamer"]
        assert hard["adaptive"][0]["why"] == disagree
        assert "the verifier is unsure (spread 0.00 < 0.50)" in hard["adaptive"][1]["why"]
    else:
        assert [d["mode"] for d in hard["adaptive"]] == ["dreamer"]
        assert hard["adaptive"][0]["why"] == f"{disagree}: imagine the outcomes"
    # The first answer's top (Alpha, the greedy candidate) leads, then by votes: Beta (2), Gamma (1).
    assert hard["candidates"] == [buttons["Alpha"], buttons["Beta"], buttons["Gamma"]]
    assert hard["greedy"] == buttons["Alpha"] and hard["overruled"]  # Gamma 1.0 beats Alpha 0.0 by the margin
    assert hard["mode"] == "dreamer" and hard["choice"] == buttons["Gamma"]

    assert [d["mode"] for d in easy["adaptive"]] == ["reactive"] and easy["mode"] == "reactive"
    assert easy["adaptive"][0]["signals"] == {"agreement": 1.0, "new_page": False, "surprise": 0.0,
                                              "risky": None, "spread": None, "last_mode": "dreamer"}
    assert easy["scores"] == {} and easy["imagined"] == {}
    # Step 1: one proposal call (3 answers), [3 rerank scorings,] 3 imaginings, 3 scorings; step 2: one call.
    reranked = 3 if rerank_first else 0
    assert result.usage["calls"] == 7 + reranked + 1
    assert llm.used("world_model") == 3 and llm.used("verifier") == 3 + reranked


async def test_a_surprising_outcome_raises_the_next_steps_compute(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    # Gamma's prediction expects a checkout page; the page stays and only its status line changes.
    llm = ScriptedLLM(adaptive_script(buttons, gamma_url="http://127.0.0.1:9/checkout", gamma_appear="Checkout"))
    result, (first, second) = await run(env, page_path, llm, tmp_path, strategy="adaptive", adaptive=THREE_SAMPLES)

    assert first["surprise"]["missed"] == ["appears: Checkout", "url http://127.0.0.1:9/checkout"]
    assert first["surprise"]["unnamed"] == ["disappeared: text 'Nothing clicked yet.'; "
                                            "appeared: text 'Gamma clicked 1 times'"]
    assert first["surprise"]["score"] == 1.0
    [decision] = second["adaptive"]
    assert decision["mode"] == "beam" and (decision["horizon"], decision["width"]) == (2, 2)
    assert decision["why"] == "the last step surprised (surprise 1.00 >= 0.50)"
    assert decision["signals"]["last_mode"] == "dreamer"
    assert second["choice"] == "send_msg_to_user('done')" and result.answer == "done"
    assert result.usage["calls"] == 7 + 3  # the answer is imagined and scored, and its path ends there


def test_only_a_failed_action_is_a_full_surprise() -> None:
    obs = Observation(url="http://site/", title="t", elements=[],
                      last_action_error="alert dialog 'Saved' was accepted")  # a page's note, not a failure
    assert step_signals(obs, [], False, None, "reactive", 1.0, None).surprise is None
    assert step_signals(obs, [], False, 0.2, "dreamer", 1.0, None).surprise == 0.2
    assert step_signals(obs, [], True, 0.2, "dreamer", 1.0, None).surprise == 1.0


def test_first_decision_follows_the_thresholds() -> None:
    settings = AdaptiveSettings(agreement_easy=0.6, surprise_hard=0.4)
    easy = Signals(agreement=0.67, new_page=False, surprise=0.1)
    assert first_decision(easy, settings).plan.mode == "reactive"
    assert first_decision(Signals(agreement=0.67, new_page=True), settings).plan.mode == "dreamer"
    assert first_decision(Signals(agreement=1.0, new_page=True), settings).plan.mode == "reactive"  # unanimous
    lenient = AdaptiveSettings(agreement_easy=0.6, agreement_easy_new_page=0.6)
    assert first_decision(Signals(agreement=0.67, new_page=True), lenient).plan.mode == "reactive"
    two_of_three = Signals(agreement=0.6667, new_page=False)
    assert first_decision(two_of_three, AdaptiveSettings()).plan.mode == "reactive"
    assert first_decision(Signals(agreement=0.5, new_page=False), settings).plan.mode == "dreamer"
    cascade = settings.model_copy(update={"rerank_first": True})
    assert first_decision(Signals(agreement=0.5, new_page=False), cascade).plan.mode == "rerank"
    assert first_decision(Signals(agreement=1.0, surprise=0.4), settings).plan.mode == "beam"
    # Surprised again right after a beam search: no second search; decided as if nothing surprised.
    again = first_decision(Signals(agreement=1.0, surprise=0.9, last_mode="beam"), settings)
    assert again.plan.mode == "reactive" and again.why.startswith("the last step surprised (surprise 0.90 >= 0.40), "
                                                                    "but beam did not pay last step; easy")
    assert first_decision(Signals(agreement=0.5, surprise=0.9, last_mode="beam"), settings).plan.mode == "dreamer"
    assert first_decision(Signals(agreement=1.0, surprise=0.9, last_mode="dreamer"), settings).plan.mode == "beam"
    risky = Signals(agreement=1.0, risky="click on button 'Place order'")
    assert first_decision(risky, settings).plan.mode == "rerank"  # its margin must be checked
    assert first_decision(easy, AdaptiveSettings(agreement_easy=0.9)).plan.mode == "dreamer"


async def test_propose_by_vote_makes_one_call_keeps_the_greedy_action_first_and_orders_the_rest_by_votes(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str]
) -> None:
    obs, _ = await env.reset(UrlTask("counter", str(page_path), GOAL))
    alpha, beta, gamma = buttons["Alpha"], buttons["Beta"], buttons["Gamma"]
    llm = ScriptedLLM({"policy": [candidates(alpha, gamma), candidates(gamma, "click('e999')"), "no idea"]})
    proposal, agreement = await propose_by_vote(llm, GOAL, obs, render_text(obs), [], k=2, samples=3)

    # Alpha: the first answer's top (the greedy one), though Gamma has two votes; one answer in three
    # has Alpha on top.
    assert proposal.candidates == [alpha, gamma] and agreement == 0.3333
    assert [r["answer"] for r in proposal.rejected] == ["click('e999')", "no idea"]
    assert llm.remaining("policy") == 0 and beta not in proposal.candidates
