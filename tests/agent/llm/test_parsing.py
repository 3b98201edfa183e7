"""Reading JSON out of a model's answer takes time linear in the answer, whatever the answer holds."""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from agent.llm.parsing import extract_json

# Answers that took quadratic time (or crashed) before: braces that never close, braces nested deep,
# spans that all fail to parse, quotes that swallow the rest, repairs of long spans.
HOSTILE_ANSWERS: dict[str, Callable[[int], str]] = {
    "unclosed braces": lambda n: "{" * n,
    "nested braces": lambda n: "{" * (n // 2) + "}" * (n // 2),
    "nested keys": lambda n: '{"a":' * (n // 5) + "}" * (n // 5),
    "many small spans": lambda n: "{x}" * (n // 3),
    "quotes inside braces": lambda n: "{'{\"{" * (n // 4) + "}" * (n // 4),
    "trailing commas": lambda n: '{"a": [' + "1," * (n // 2) + "]",
    "python literals": lambda n: "{'a': [" + "True, " * (n // 6) + "x]}",
    "fences": lambda n: "```{" * (n // 4),
}


def fastest_of_three(text: str) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        extract_json(text)
        times.append(time.perf_counter() - started)
    return min(times)


@pytest.mark.parametrize("shape", HOSTILE_ANSWERS)
def test_ten_times_the_answer_takes_about_ten_times_as_long(shape: str) -> None:
    make = HOSTILE_ANSWERS[shape]
    small, large = fastest_of_three(make(20_000)), fastest_of_three(make(200_000))
    # Linear work grows 10x; the quadratic parser grew 100x (20,000 '{' took seconds, 200,000 hours).
    # The slack keeps timer noise on a tiny `small` from failing the test.
    assert large <= 30 * small + 0.05, f"{shape}: 20k chars {small:.4f} s, 200k chars {large:.4f} s"


def test_twenty_thousand_braces_and_a_megabyte_answer_give_no_object() -> None:
    assert extract_json("{" * 20_000) is None
    assert extract_json("x" * 1_000_000) is None
    assert extract_json("{'{\"{" * 250_000) is None  # all-quote-and-brace megabyte: the budget gives up


def test_the_object_after_a_megabyte_of_prose_is_still_found() -> None:
    answer = "I looked at the page. " * 50_000 + '{"candidates": [{"action": "click(\'e1\')", "reason": "go"}]}'
    assert extract_json(answer) == {"candidates": [{"action": "click('e1')", "reason": "go"}]}


@pytest.mark.parametrize("answer", [
    '{"a":' * 3000 + "1" + "}" * 3000,  # deeper than the JSON decoder recurses
    "{'a': é, 'b': True}",  # a non-ASCII word outside a string, in a span that needs repairs
])
def test_an_answer_too_deep_or_too_odd_is_no_crash(answer: str) -> None:
    result = extract_json(answer)
    assert result is None or isinstance(result, dict)


def test_an_object_after_an_unclosed_quote_is_found() -> None:
    # An apostrophe opens a "string" that never closes; the object inside it is found by its own scan.
    assert extract_json("{ I don't know {\"action\": \"noop()\"} }") == {"action": "noop()"}
