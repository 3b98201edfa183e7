"""Surprise: the prediction for the executed action against the real next observation."""
from __future__ import annotations

from envs.types import Element, Observation
from world_model.surprise import measure_surprise
from world_model.world_model import Prediction


def page(url: str, *names: str, error: str | None = None) -> Observation:
    elements = [Element(id=f"e{i}", role="button", name=name) for i, name in enumerate(names, 1)]
    return Observation(url=url, title="t", elements=elements, last_action_error=error)


BEFORE = page("http://shop.test/cart", "Checkout", "Remove item")


def test_a_prediction_that_came_true_scores_zero() -> None:
    after = page("http://shop.test/checkout/", "Place order")
    prediction = Prediction("The checkout form opens", url="/checkout",
                            appear=["button 'Place order'"], disappear=["button 'Checkout'"])
    surprise = measure_surprise("click('e1')", prediction, BEFORE, after)
    assert surprise.score == 0.0 and surprise.missed == []
    assert surprise.matched == ["url http://shop.test/checkout", "appears: button 'Place order'",
                                "disappears: button 'Checkout'"]


def test_what_did_not_happen_is_listed_and_scored() -> None:
    after = page("http://shop.test/cart", "Checkout", "Remove item", "Sign in to continue")
    prediction = Prediction("The checkout form opens", url="http://shop.test/checkout",
                            appear=["Place order"], disappear=["Remove item"])
    surprise = measure_surprise("click('e1')", prediction, BEFORE, after)
    assert surprise.score == 1.0
    assert surprise.missed == ["url http://shop.test/checkout", "appears: Place order", "disappears: Remove item"]
    assert (surprise.expected_url, surprise.actual_url) == ("http://shop.test/checkout", "http://shop.test/cart")


def test_no_url_means_the_page_stays_and_a_failed_action_is_a_miss() -> None:
    after = page("http://shop.test/cart", "Checkout", "Remove item", error="TimeoutError: element not visible")
    surprise = measure_surprise("click('e2')", Prediction("The item disappears"), BEFORE, after)
    assert surprise.matched == ["url http://shop.test/cart"]
    assert surprise.missed == ["the action ran (it failed: TimeoutError: element not visible)"]
    assert surprise.score == 0.5
