"""Cutting a text to a token budget: within it, a visible marker saying how much was cut, and time in
proportion to the budget, not to the text."""
from __future__ import annotations

import re

import pytest

from envs.tokens import clip_to_tokens, count_tokens, fits

LONG = "the quick brown fox jumps over the lazy dog; " * 20_000  # 900,000 characters


@pytest.mark.parametrize("keep", ["start", "end", "both"])
@pytest.mark.parametrize("budget", [20, 100, 1000])
def test_a_long_text_is_cut_to_its_budget_with_a_marker_of_what_was_cut(keep: str, budget: int) -> None:
    clipped = clip_to_tokens(LONG, budget, keep)  # type: ignore[arg-type]
    assert count_tokens(clipped) <= budget
    marker = re.search(r"… \[trimmed ([\d,]+) characters\]", clipped)
    assert marker is not None
    kept = clipped.replace(marker.group(0), "")
    assert len(kept) + int(marker.group(1).replace(",", "")) == len(LONG)  # the count is exact
    if keep != "end":
        assert clipped.startswith("the quick brown fox")
    if keep != "start":
        assert clipped.endswith("the lazy dog; ")


def test_a_text_within_its_budget_is_left_as_it_is() -> None:
    text = "a short note"
    assert clip_to_tokens(text, 10) == text and fits(text, 3) and not fits(LONG, 1000)


def test_characters_of_several_tokens_are_counted_and_never_split() -> None:
    text = "日本語のテキスト😀" * 2_000  # fewer characters than tokens
    assert len(text) < count_tokens(text)
    clipped = clip_to_tokens(text, 200)
    assert count_tokens(clipped) <= 200 and "\ufffd" not in clipped
    assert not fits(text[:200], 200)  # 200 characters can be more than 200 tokens
