"""Surprise: the changes predicted for the executed action against the real change of the page, on
pages built here and on before/after pairs recorded in traces/examples."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.llm.parsing import extract_json
from envs.types import Element, Observation
from traces.schema import read_trace
from world_model.page_diff import page_diff
from world_model.surprise import NO_PREDICTION, RECALL_REGIONS, Tally, f1_score, measure_surprise
from world_model.world_model import Prediction, parse_prediction

EXAMPLES = Path(__file__).resolve().parents[2] / "traces" / "examples"


def page(url: str, *elements: Element, error: str | None = None) -> Observation:
    return Observation(url=url, title="t", elements=list(elements), last_action_error=error)


def button(name: str, id: str | None = None, **fields: object) -> Element:
    return Element(id=id or f"b-{name}", role="button", name=name, **fields)  # type: ignore[arg-type]


def text(name: str, **fields: object) -> Element:
    return Element(id=None, role="text", name=name, **fields)  # type: ignore[arg-type]


CART = page("http://shop.test/cart", text("Your cart is empty."), button("Checkout", "e1"), button("Remove item", "e2"))


def recorded_pair(example: str, step: int) -> tuple[str, Observation, Observation]:
    """(action, before, after) of a step recorded in traces/examples."""
    trace = read_trace(EXAMPLES / example)
    [recorded] = [s for s in trace.executed_steps() if s["step"] == step]
    return recorded["choice"], trace.observation(recorded["before"]), trace.observation(recorded["after"])


# ------------------------------------------------------------------------------- the real change


def test_a_replaced_status_line_is_one_region_and_unchanged_elements_are_none() -> None:
    after = page(CART.url, text("Added 1 × Notebook"), button("Checkout", "e1"), button("Remove item", "e2"))
    [region] = page_diff(CART, after).regions
    assert [c.describe() for c in region.changes] == ["disappeared: text 'Your cart is empty.'",
                                                      "appeared: text 'Added 1 × Notebook'"]


def test_a_select_and_its_options_change_as_one_region_and_a_clock_tick_is_no_change() -> None:
    def form(cover: str, clock: str) -> Observation:
        return page("http://shop.test/item", text(f"Local time {clock}"),
                    Element("e5", "combobox", "Cover", value=cover),
                    *(Element(f"e{6 + i}", "option", name, depth=1, states=["selected"] if name == cover else [])
                      for i, name in enumerate(("Black", "Forest green", "Sand"))),
                    button("Add to cart", "e9"))

    [region] = page_diff(form("Forest green", "10:00:01"), form("Sand", "10:00:02")).regions
    assert [c.describe() for c in region.changes] == [
        "changed: combobox 'Cover' value='Forest green' -> combobox 'Cover' value='Sand'",
        "changed: option 'Forest green' selected -> option 'Forest green'",
        "changed: option 'Sand' -> option 'Sand' selected"]


def test_ids_match_within_a_page_and_roles_and_names_across_a_navigation() -> None:
    moved = page(CART.url, button("Remove item", "e2"), text("Your cart is empty."), button("Checkout", "e1"))
    assert page_diff(CART, moved).regions == []  # a reordered page: nothing appeared or disappeared
    # A new document numbers its ids afresh: e1 is another element there, matched by role and name.
    renumbered = page("http://shop.test/cart?page=2", button("Remove item", "e1"), button("Checkout", "e2"),
                      text("Your cart is empty."))
    diff = page_diff(CART, renumbered)
    assert diff.url_changed and diff.regions == []


def test_a_big_page_diffs_fast_and_a_change_among_look_alikes_stays_in_place() -> None:
    def catalog(url: str, label: str = "") -> Observation:
        rows = ((text(f"In stock{label}"), button(f"Add {i}{label}", f"e{i}")) for i in range(1000))
        return page(url, *(element for row in rows for element in row))

    before, after = catalog("http://shop.test/list"), catalog("http://shop.test/list")
    after.elements[1000] = text("Sold out")  # one of a thousand identical lines
    [region] = page_diff(before, after).regions
    assert [(c.kind, c.anchor) for c in region.changes] == [("disappeared", 1000), ("appeared", 1000)]
    started = time.monotonic()
    navigated = page_diff(before, catalog("http://shop.test/other", " (new)"))  # nothing in common
    assert time.monotonic() - started < 5  # aligning the two trees took 48 s here
    assert navigated.url_changed and len(navigated.regions) == 1


# ------------------------------------------------------------------------------------- scores


def test_a_prediction_that_names_every_change_scores_f1_one() -> None:
    after = page("http://shop.test/checkout", text("Shipping address"), button("Place order", "e1"))
    prediction = Prediction("The checkout form opens", url="/checkout",
                            appear=["button 'Place order'", "Shipping address"],
                            disappear=["button 'Checkout'", "Your cart is empty."])
    surprise = measure_surprise("click('e1')", prediction, CART, after)
    assert (surprise.f1, surprise.score, surprise.precision, surprise.recall) == (1.0, 0.0, 1.0, 1.0)
    assert (surprise.claims, surprise.true_claims) == (5, 5)
    assert (surprise.changes, surprise.named_changes) == (2, 2)  # the URL and the one replaced region
    assert surprise.missed == [] and surprise.unnamed == [] and surprise.expected_url == "http://shop.test/checkout"


def test_a_partial_prediction_scores_between_with_its_counts() -> None:
    after = page(CART.url, text("Added 1 × Notebook"), button("Checkout", "e1"),
                 Element("e2", "button", "Remove item", states=["disabled"]), text("Free shipping unlocked"))
    prediction = Prediction("The item is added", url="same",
                            appear=["Added 1 × Notebook", "button 'Undo'"], disappear=[])
    surprise = measure_surprise("click('e3')", prediction, CART, after)
    assert surprise.matched == ["appears: Added 1 × Notebook", "url stays"]
    assert surprise.missed == ["appears: button 'Undo'"]
    assert surprise.unnamed == ["changed: button 'Remove item' -> button 'Remove item' disabled; "
                                "appeared: text 'Free shipping unlocked'"]
    assert (surprise.true_claims, surprise.claims, surprise.named_changes, surprise.changes) == (2, 3, 1, 2)
    assert (surprise.precision, surprise.recall, surprise.f1) == (0.6667, 0.5, 0.5714)
    assert surprise.score == pytest.approx(1 - surprise.f1)


@pytest.mark.parametrize("answer", [
    "",  # empty
    '{"changes": "", "url": "", "appear": [], "disappear": []}',  # an empty object
    '{"changes": "The page shows the page shows the page shows the page shows',  # cut-off repetition
    "State changes: {<original content of the action>} {<original content of the action>}",  # unparsed
])
def test_an_empty_or_unparsed_answer_is_no_prediction_and_scores_worst(answer: str) -> None:
    prediction = parse_prediction(answer, extract_json(answer))  # as the LLM layer hands the answer over
    after = page(CART.url, text("Added 1 × Notebook"), button("Checkout", "e1"), button("Remove item", "e2"))
    for real in (after, CART):  # whether the page changed or not
        surprise = measure_surprise("click('e3')", prediction, CART, real)
        assert (surprise.predicted, surprise.f1, surprise.score, surprise.precision) == (False, 0.0, 1.0, 0.0)
        assert surprise.missed == [NO_PREDICTION] and surprise.matched == []


def test_repeated_or_template_claims_are_false_claims_made_once() -> None:
    action, before, after = recorded_pair("miniwob.click-button.seed1", 1)  # a START button appears
    prediction = Prediction("{<original content of the action>}", url=before.url + ".json,",
                            appear=["<role 'name' of each element or text you expect to appear>"] * 9,
                            disappear=["button 'Ok'"] * 3 + ["text"])
    surprise = measure_surprise(action, prediction, before, after)
    assert (surprise.claims, surprise.true_claims, surprise.f1, surprise.score) == (4, 0, 0.0, 1.0)
    assert surprise.unnamed == ["appeared: clickable 'START'"]


def test_the_issues_cart_example_is_a_full_surprise_when_the_status_change_goes_unnamed() -> None:
    action, before, after = recorded_pair("demo-order", 3)  # "Your cart is empty." -> "Added 2 × Sand …"
    unnamed = measure_surprise(action, Prediction("The notebook is added", appear=["button 'Checkout'"]), before, after)
    assert unnamed.score == 1.0 and unnamed.unnamed == [
        "disappeared: text 'Your cart is empty.'; appeared: text 'Added 2 × Sand notebook to your cart.'"]
    named = Prediction("The status line confirms", appear=["Added 2 × Sand notebook"], disappear=[])
    assert measure_surprise(action, named, before, after).f1 == 1.0
    letters = measure_surprise(action, Prediction("A", appear=["A"], disappear=["A"]), before, after)
    assert letters.missed == ["appears: A", "disappears: A"]  # claims match whole words: "A" is not in "Added"


def test_recorded_value_changes_are_named_by_the_new_value() -> None:
    action, before, after = recorded_pair("demo-order", 1)  # Quantity 1 -> 2
    right = Prediction("Quantity shows 2", appear=["spinbutton 'Quantity' value='2'"])
    wrong = Prediction("Quantity shows 3", appear=["spinbutton 'Quantity' value='3'"])
    stale = Prediction("Quantity is there", appear=["spinbutton 'Quantity'"])  # names nothing new
    assert measure_surprise(action, right, before, after).f1 == 1.0
    assert measure_surprise(action, wrong, before, after).f1 == 0.0
    assert measure_surprise(action, stale, before, after).f1 == 0.0
    action, before, after = recorded_pair("demo-order", 2)  # Cover -> Sand, and the options' selection
    cover = measure_surprise(action, Prediction("Sand", appear=["option 'Sand' selected"]), before, after)
    assert (cover.f1, cover.named_changes, cover.changes) == (1.0, 1, 1)


def test_a_prediction_of_no_change_where_nothing_changed_is_right() -> None:
    action, before, after = recorded_pair("demo-order", 4)  # the answer: the page stays as it is
    assert measure_surprise(action, Prediction("The answer is sent"), before, after).f1 == 1.0
    assert measure_surprise(action, Prediction("The answer is sent", url="same"), before, after).f1 == 1.0
    dialog = measure_surprise(action, Prediction("A dialog opens", appear=["Thank you"]), before, after)
    assert (dialog.f1, dialog.precision, dialog.recall) == (0.0, 0.0, None)


def test_what_scrolled_into_view_may_be_named_but_need_not_be() -> None:
    before = page("http://shop.test/item", button("Add to cart", "e1"), text("Fine print", offscreen=True))
    scrolled = page(before.url, button("Add to cart", "e1", offscreen=True), text("Fine print"))
    named = measure_surprise("scroll(0, 600)", Prediction("The fine print shows", appear=["Fine print"]),
                             before, scrolled)
    assert (named.f1, named.true_claims, named.named_changes, named.changes) == (1.0, 1, 1, 1)
    unnamed = measure_surprise("scroll(0, 600)", Prediction("The page scrolls", url="same"), before, scrolled)
    assert (unnamed.f1, unnamed.changes, unnamed.unnamed) == (1.0, 0, [])


# ------------------------------------------------------------------------------------- the URL


def test_a_url_that_changed_must_be_predicted() -> None:
    after = page("http://shop.test/checkout", text("Your cart is empty."), button("Checkout", "e1"),
                 button("Remove item", "e2"))
    unsaid = measure_surprise("click('e1')", Prediction("Checkout opens"), CART, after)
    assert (unsaid.claims, unsaid.changes, unsaid.named_changes, unsaid.f1) == (0, 1, 0, 0.0)
    assert unsaid.unnamed == ["url http://shop.test/checkout"]
    stays = measure_surprise("click('e1')", Prediction("Nothing happens", url="same"), CART, after)
    assert stays.missed == ["url stays"] and stays.f1 == 0.0
    right = measure_surprise("click('e1')", Prediction("Checkout opens", url="checkout"), CART, after)
    assert right.matched == ["url http://shop.test/checkout"] and right.f1 == 1.0


def test_a_url_that_stayed_is_a_hit_when_predicted_so_and_a_false_claim_when_not() -> None:
    after = page(CART.url, text("Your cart is empty."), button("Checkout", "e1"))  # Remove item is gone
    said_same = measure_surprise("click('e2')", Prediction("Item removed", url=CART.url + "/",
                                                           disappear=["button 'Remove item'"]), CART, after)
    assert said_same.matched == ["disappears: button 'Remove item'", "url stays"] and said_same.f1 == 1.0
    said_new = measure_surprise("click('e2')", Prediction("Item removed", url="/empty",
                                                          disappear=["Remove item"]), CART, after)
    assert said_new.missed == ["url http://shop.test/empty"]
    assert (said_new.precision, said_new.recall) == (0.5, 1.0)


def test_a_failed_action_is_a_change_no_prediction_names() -> None:
    failed = page(CART.url, *CART.elements, error="TimeoutError: element not visible")
    surprise = measure_surprise("click('e2')", Prediction("The item disappears", url="same"), CART, failed)
    assert surprise.matched == ["url stays"]
    assert surprise.unnamed == ["the action failed: TimeoutError: element not visible"]
    assert (surprise.precision, surprise.recall) == (1.0, 0.0) and surprise.f1 == 0.0


def test_recall_counts_at_most_a_few_regions_on_a_page_that_changed_everywhere() -> None:
    rows = [text(f"row {i}") for i in range(12)]
    before = page("http://list.test/", *(e for row in rows for e in (row, button(f"Open {row.name}"))))
    after = page("http://list.test/", *(e for row in rows for e in (text(row.name + " (sold)"),
                                                                         button(f"Open {row.name}"))))
    assert len(page_diff(before, after).regions) == 12
    prediction = Prediction("every row is sold", appear=[f"row {i} (sold)" for i in range(RECALL_REGIONS)])
    surprise = measure_surprise("click('sort')", prediction, before, after)
    assert (surprise.named_changes, surprise.changes, surprise.f1) == (RECALL_REGIONS, RECALL_REGIONS, 1.0)


def test_totals_add_the_counts_and_an_empty_side_leaves_the_other() -> None:
    total = Tally(2, 1, 1, 1) + Tally(1, 0, 3, 0)
    assert (total.precision, total.recall) == (1 / 3, 1 / 4)
    assert total.f1 == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert (f1_score(None, None), f1_score(None, 0.5), f1_score(0.25, None)) == (1.0, 0.5, 0.25)
    assert f1_score(0.0, 0.0) == 0.0
