"""Reading JSON out of a model's answer takes time linear in the answer, whatever the answer holds."""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest

from agent.llm.parsing import enum_fields, enum_probabilities, extract_json

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


# ---------------------------------------------------------------- a fixed-value field's odds from token logprobs

VERDICT_FIELDS = {"verdict": ["complete", "on track", "wrong"]}


def lp(p: float) -> float:
    return math.log(p)


def test_the_odds_of_a_fixed_value_field_are_read_where_its_value_starts() -> None:
    # As Qwen2.5-Coder tokenises a verdict: the value's first token after `"verdict": "`, its likely
    # alternatives including tokens the schema does not allow ("no"), which are left out.
    tokens = [('{"', []), ("reason", []), ('":', []), (' "', []), ("on", [("on", lp(0.9))]), ('",', []),
              (' "', []), ("verdict", []), ('":', []), (' "', []),
              ("com", [("com", lp(0.4)), ("on", lp(0.3)), ("no", lp(0.2)), ("w", lp(0.1))]), ("plete", []), ('"}', [])]
    odds = enum_probabilities(tokens, VERDICT_FIELDS)["verdict"]
    assert odds == {"complete": 0.5, "on track": 0.375, "wrong": 0.125}  # "on" in the reason is not the verdict


def test_a_value_token_that_carries_its_opening_quote_is_read_too() -> None:
    likely = [(' "on', lp(0.6)), (' "wrong', lp(0.2)), (" 1", lp(0.2))]
    tokens = [('{"verdict":', []), (' "on', likely), (' track"}', [])]
    assert enum_probabilities(tokens, VERDICT_FIELDS) == {"verdict": {"complete": 0.0, "on track": 0.75, "wrong": 0.25}}


def test_no_odds_where_the_field_is_absent_or_no_allowed_value_is_likely() -> None:
    assert enum_probabilities([('{"reason": "x"}', [])], VERDICT_FIELDS) == {}
    tokens = [('{"verdict": "', []), ("maybe", [("maybe", lp(0.7)), ("yes", lp(0.3))]), ('"}', [])]
    assert enum_probabilities(tokens, VERDICT_FIELDS) == {}


def test_enum_fields_are_the_schemas_fixed_value_strings() -> None:
    schema = {"properties": {"reason": {"type": "string"}, "verdict": {"type": "string", "enum": ["a", "b"]}}}
    assert enum_fields(schema) == {"verdict": ["a", "b"]} and enum_fields(None) == {}
