"""The risk gate on a real checkout page whose buttons count their clicks: an order placed by mistake
shows up as a click on "Place order"."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main
from agent.config import PlannerConfig
from agent.llm.scripted import ScriptedLLM
from agent.loop import RunResult, run_task
from agent.risk import gate, irreversible_reason, preference_order
from agent.verifier import Score
from envs.env import BrowserEnv
from envs.tasks import UrlTask
from envs.types import Element, Observation
from tests.agent.answers import candidates
from world_model.world_model import Prediction

CHECKOUT_PAGE = """<!doctype html>
<html><head><title>Checkout</title></head><body>
<h1>Checkout</h1>
<p id="status">Your cart: 1 lamp, $40.</p>
<button onclick="count('order')">Place order</button>
<button onclick="count('review')">Review cart</button>
<script>
  window.clicks = {order: 0, review: 0};
  function count(name) {
    window.clicks[name] += 1;
    document.getElementById('status').textContent = name === 'order' ? 'Order #1001 placed.' : 'Cart: 1 lamp.';
  }
</script>
</body></html>
"""
GOAL = "Buy the lamp in the cart."


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "checkout.html"
    path.write_text(CHECKOUT_PAGE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def buttons(env: BrowserEnv, page_path: Path) -> dict[str, str]:
    obs, _ = await env.reset(UrlTask("ids", str(page_path), ""))
    return {e.name: f"click('{e.id}')" for e in obs.elements if e.role == "button"}


async def clicks(env: BrowserEnv) -> dict[str, int]:
    page = env.session.page
    assert page is not None
    return await page.evaluate("window.clicks")


def prediction(changes: str) -> str:
    return json.dumps({"changes": changes, "url": "", "appear": [], "disappear": []})


def verdict(word: str) -> str:
    return json.dumps({"reason": f"looks {word}", "verdict": word})


async def run(
    env: BrowserEnv, page_path: Path, llm: ScriptedLLM, out: Path, **config: Any
) -> tuple[RunResult, list[dict]]:
    result = await run_task(UrlTask("checkout", str(page_path), GOAL), llm, env, PlannerConfig(**config), out,
                            on_step=lambda _: None)
    lines = (out / "checkout" / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    return result, [json.loads(line) for line in lines]


def dreamer_script(buttons: dict[str, str], order: str, review: str) -> dict[str, Any]:
    """The policy prefers placing the order; the verifier's verdicts on both outcomes are given."""
    return {
        "policy": [candidates(buttons["Place order"], buttons["Review cart"]), candidates("send_msg_to_user('ok')")],
        "world_model": [
            {"when": f"Action: {buttons['Place order']}", "answer": prediction("Order #1001 is placed")},
            {"when": f"Action: {buttons['Review cart']}", "answer": prediction("The cart is shown")},
            {"when": "Action: send_msg_to_user", "answer": prediction("The agent answers")},
        ],
        "verifier": [
            {"when": "Predicted outcome: Order #1001", "answer": verdict(order)},
            {"when": "Predicted outcome: The cart", "answer": verdict(review)},
            {"when": "Predicted outcome: The agent answers", "answer": verdict("complete")},
        ],
    }


async def test_safe_mode_refuses_to_place_an_order_and_ends_the_run_with_the_reason(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    llm = ScriptedLLM({"policy": [buttons["Place order"]]})
    result, [step] = await run(env, page_path, llm, tmp_path, strategy="reactive", safe=True)

    assert await clicks(env) == {"order": 0, "review": 0}
    assert (result.stop_reason, result.steps) == ("refused_irreversible", 0)
    assert step["stop_reason"] == "refused_irreversible" and step["choice"] is None
    assert "place order" in step["risky"][buttons["Place order"]]
    assert step["gate"].startswith(f"safe mode refused irreversible {buttons['Place order']}")


async def test_safe_mode_runs_the_best_reversible_candidate_instead(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    llm = ScriptedLLM(dreamer_script(buttons, order="complete", review="on track"))
    result, (first, _) = await run(env, page_path, llm, tmp_path, strategy="dreamer", k=2, samples=1, safe=True)

    assert await clicks(env) == {"order": 0, "review": 1}
    assert first["choice"] == buttons["Review cart"] and result.answer == "ok"
    assert first["gate"].endswith(f"ran {buttons['Review cart']} instead")


@pytest.mark.parametrize("order, review, placed", [
    ("complete", "on track", 1),  # 1.0 beats 0.5 by more than the margin
    ("on track", "on track", 0),  # a tie is not enough for an irreversible action
])
async def test_without_safe_mode_an_irreversible_action_needs_the_margin(
    order: str, review: str, placed: int, env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    llm = ScriptedLLM(dreamer_script(buttons, order=order, review=review))
    _, (first, _) = await run(env, page_path, llm, tmp_path, strategy="dreamer", k=2, samples=1, risk_margin=0.25)

    assert await clicks(env) == {"order": placed, "review": 1 - placed}
    assert ("margin 0.25 met" if placed else "margin 0.25 not met") in first["gate"]


def test_cli_safe_flag_refuses_the_order(page_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The page's ids are assigned in document order: e1 is the first button, "Place order".
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"policy": ["click('e1')"]}))
    code = main(["run", "--url", str(page_path), "--goal", GOAL, "--model", f"scripted:{script}",
                 "--strategy", "reactive", "--safe", "--out", str(tmp_path / "runs")])

    assert code == 0
    saved = json.loads((tmp_path / "runs" / "checkout" / "result.json").read_text())
    assert (saved["stop_reason"], saved["steps"]) == ("refused_irreversible", 0)


# ------------------------------------------------------------------------------ classification


def page(*elements: Element, focused: str | None = None) -> Observation:
    return Observation(url="http://127.0.0.1/shop", title="Shop", elements=list(elements), focused_id=focused)


@pytest.mark.parametrize("action, element, outcome, irreversible", [
    ("click('e1')", Element("e1", "button", "Place order"), None, True),
    ("click('e1')", Element("e1", "button", "Delete repository"), None, True),
    ("click('e1')", Element("e1", "button", "Post comment"), None, True),
    ("click('e1')", Element("e1", "button", "Send message"), None, True),
    ("press('e1', 'Enter')", Element("e1", "button", "Pay now"), None, True),
    ("click('e1')", Element("e1", "button", "Add to cart"), None, False),
    ("click('e1')", Element("e1", "link", "Posts"), None, False),
    ("click('e1')", Element("e1", "link", "Order history"), None, False),
    ("fill('e1', 'delete me')", Element("e1", "textbox", "Comment"), None, False),
    ("hover('e1')", Element("e1", "button", "Delete"), None, False),  # hovering commits nothing
    # The element's name says nothing; the world model's prediction does.
    ("click('e1')", Element("e1", "button", "Continue"), "The order is placed and a confirmation number appears", True),
    ("fill('e1', 'hi', press_enter=True)", Element("e1", "textbox", "Message"), "The message is sent to Bob", True),
    ("click('e1')", Element("e1", "button", "Continue"), "The shipping form appears", False),
    ("fill('e1', 'x')", Element("e1", "textbox", "Note"), "The order is placed", False),  # typing cannot commit
])
def test_irreversible_actions_are_recognised_from_the_element_and_the_prediction(
    action: str, element: Element, outcome: str | None, irreversible: bool
) -> None:
    prediction_ = Prediction(outcome) if outcome else None
    assert (irreversible_reason(action, page(element), prediction_) is not None) == irreversible


def test_keyboard_enter_is_judged_by_the_focused_element() -> None:
    obs = page(Element("e1", "button", "Submit review"), focused="e1")
    reason = irreversible_reason("keyboard_press('Enter')", obs)
    assert reason is not None and "submit" in reason
    assert irreversible_reason("keyboard_press('ArrowDown')", obs) is None


def test_gate_without_scores_lets_reactive_act_unless_safe() -> None:
    risky = {"click('e1')": "place order"}
    assert gate(["click('e1')"], {}, risky, safe=False, margin=0.25).choice == "click('e1')"
    assert gate(["click('e1')"], {}, risky, safe=True, margin=0.25).choice is None
    held = gate(["click('e1')"], {"click('e1')": Score(0.0)}, risky, safe=False, margin=0.25)
    assert held.choice is None and held.note is not None and "no reversible candidate" in held.note


def test_an_irreversible_winner_held_back_gives_way_to_the_greedy_candidate_not_a_weak_rival() -> None:
    # Greedy G (reversible) 0.5; X (irreversible) 0.8 overrules G by the margin 0.2; Y (reversible) 0.6
    # does not. X must beat the best reversible score (Y's 0.6) by the risk margin 0.25: it does not,
    # so the preferred reversible candidate runs, and that is G, not Y.
    greedy, order, rival = "click('e1')", "click('e2')", "click('e3')"
    scores = {greedy: Score(0.5), order: Score(0.8), rival: Score(0.6)}
    ranked = preference_order([greedy, order, rival], scores, margin=0.2)
    assert ranked == [order, greedy, rival]
    decision = gate(ranked, scores, {order: "place order"}, safe=False, margin=0.25)
    assert decision.choice == greedy
    assert decision.note is not None and f"best reversible {rival} scores 0.60" in decision.note
    assert gate(ranked, {**scores, order: Score(0.9)}, {order: "place order"}, safe=False, margin=0.25).choice == order


def test_preference_order_keeps_the_greedy_candidate_unless_beaten_by_the_margin() -> None:
    greedy, a, b = "click('e1')", "click('e2')", "click('e3')"
    assert preference_order([greedy, a, b], {}, margin=0.2) == [greedy, a, b]  # reactive: no scores
    scores = {greedy: Score(0.5), a: Score(0.7), b: Score(1.0)}
    assert preference_order([greedy, a, b], scores, margin=0.2) == [b, a, greedy]  # 0.7 - 0.5 counts as 0.2
    assert preference_order([greedy, a, b], scores, margin=0.6) == [greedy, b, a]
    # Unscored (pruned) candidates come last; an unscored greedy one counts as 0.
    assert preference_order([greedy, a, b], {a: Score(0.1)}, margin=0.2) == [greedy, a, b]
    assert preference_order([greedy, a, b], {a: Score(0.3)}, margin=0.2) == [a, greedy, b]
