"""The LLM world model: one-step predictions, multi-step imagination, and prompts that share a prefix."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

import pytest

from agent.llm.budget import MeteredLLM, UsageMeter
from agent.llm.scripted import ScriptedLLM
from envs.rendering import render_text
from envs.types import Element, Observation
from world_model.world_model import LLMWorldModel, parse_prediction

OBS = Observation(
    url="http://shop.test/cart",
    title="Cart",
    elements=[Element(id="e1", role="button", name="Checkout"), Element(id="e2", role="link", name="Home")],
)
GOAL = "Buy the notebook in the cart"


def prediction(changes: str, url: str = "", appear: Sequence[str] = ()) -> str:
    return json.dumps({"changes": changes, "url": url, "appear": list(appear), "disappear": []})


def metered(script: dict) -> tuple[MeteredLLM, UsageMeter]:
    meter = UsageMeter()
    return MeteredLLM(ScriptedLLM(script), meter), meter


async def test_one_step_prediction_reads_every_field() -> None:
    llm, meter = metered({"world_model": [prediction("The checkout form opens", "/checkout", ["button 'Pay'"])]})
    [step] = await LLMWorldModel(llm).imagine(GOAL, OBS, "click('e1')", horizon=1)

    assert step.action == "click('e1')"
    assert (step.prediction.description, step.prediction.url, step.prediction.appear) == (
        "The checkout form opens", "/checkout", ["button 'Pay'"])
    [call] = meter.calls
    assert call.role == "world_model" and call.json_schema is not None
    user = call.messages[-1]["content"]
    assert user.startswith(f"Task: {GOAL}") and render_text(OBS) in user
    assert user.endswith("\nAction: click('e1')")  # what differs between candidates comes last


async def test_imagination_to_horizon_2_asks_the_imagined_policy_on_the_imagined_page() -> None:
    llm, meter = metered({
        "world_model": [prediction("The checkout form opens"), prediction("The order is placed")],
        "policy": [json.dumps({"action": "click [7]", "reason": "pay"})],
    })
    steps = await LLMWorldModel(llm).imagine(GOAL, OBS, "click('e1')", horizon=2, history=["goto('http://shop.test')"])

    assert [s.action for s in steps] == ["click('e1')", "click('e7')"]  # canonical form
    assert [s.prediction.description for s in steps] == ["The checkout form opens", "The order is placed"]
    predict_1, policy, predict_2 = meter.calls
    assert policy.role == "policy"
    assert "1. click('e1') -> The checkout form opens" in policy.messages[-1]["content"]
    assert "1. goto('http://shop.test')" in policy.messages[-1]["content"]  # the real history too
    assert predict_2.messages[-1]["content"].endswith("\nAction: click('e7')")


async def test_imagination_stops_early_when_the_imagined_policy_answers_nonsense() -> None:
    llm, meter = metered({"world_model": [prediction("Checkout opens")], "policy": ["I would pay now."]})
    steps = await LLMWorldModel(llm).imagine(GOAL, OBS, "click('e1')", horizon=3)
    assert len(steps) == 1 and steps[0].note is not None and "proposed no valid action" in steps[0].note
    assert len(meter.calls) == 2


async def test_imagination_stops_after_an_answer() -> None:
    llm, meter = metered({"world_model": [prediction("The agent answers 3")]})
    steps = await LLMWorldModel(llm).imagine(GOAL, OBS, "send_msg_to_user('3')", horizon=2)
    assert len(steps) == 1 and steps[0].note == "the imagined policy finished the task" and len(meter.calls) == 1


async def test_prompts_for_different_candidates_share_everything_before_the_action() -> None:
    llm, meter = metered({"world_model": [
        {"when": "Action:", "answer": prediction("something changes"), "repeat": True}]})
    model = LLMWorldModel(llm)
    await model.imagine(GOAL, OBS, "click('e1')", 1)
    await model.imagine(GOAL, OBS, "click('e2')", 1)

    first, second = (call.messages for call in meter.calls)
    assert first[0] == second[0]  # same system message
    a, b = first[-1]["content"], second[-1]["content"]
    shared = os.path.commonprefix([a, b])
    assert shared.endswith("Action: click('e") and a[len(shared):].startswith("1')")
    assert a.replace("click('e1')", "click('e2')") == b


@pytest.mark.parametrize("text, description, structured", [
    ('{"changes": "Cart empties", "url": null, "appear": "Empty cart", "disappear": []}', "Cart empties", True),
    ("State changes: The cart page shows 2 items.", "The cart page shows 2 items.", False),
    ("The page does not change.", "The page does not change.", False),
])
def test_predictions_are_read_from_json_or_plain_text(text: str, description: str, structured: bool) -> None:
    from agent.llm.parsing import extract_json

    parsed = parse_prediction(text, extract_json(text))
    assert (parsed.description, parsed.structured) == (description, structured)
    if structured:
        assert parsed.url is None and parsed.appear == ["Empty cart"]
