"""Getting a JSON object out of a model's plain-text answer (prose, code fences, small syntax slips)."""
from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`, or None when there is none.

    Tries, in order: the whole text, the contents of ``` fences, then every balanced `{...}` span.
    Each candidate is parsed strictly first, then after cheap repairs (trailing commas,
    single-quoted strings, Python's True/False/None).
    """
    if not text:
        return None
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        parsed = _parse_object(candidate)
        if parsed is not None:
            return parsed
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        end = _matching_brace(text, start)
        if end is None:
            continue
        parsed = _parse_object(text[start : end + 1])
        if parsed is not None:
            return parsed
    return None


def _parse_object(candidate: str) -> dict[str, Any] | None:
    if not candidate.startswith("{"):
        return None
    for attempt in (candidate, _repair(candidate)):
        try:
            value = json.loads(attempt)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing the `{` at `start`, skipping braces inside quoted strings."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _repair(candidate: str) -> str:
    """Rewrite single-quoted strings as JSON strings, drop trailing commas, map Python literals."""
    out: list[str] = []
    i = 0
    while i < len(candidate):
        ch = candidate[i]
        if ch == '"':
            end = _string_end(candidate, i, '"')
            out.append(candidate[i : end + 1])
            i = end + 1
        elif ch == "'":
            end = _string_end(candidate, i, "'")
            body = candidate[i + 1 : end].replace("\\'", "'")
            out.append(json.dumps(body))
            i = end + 1
        elif ch == ",":
            rest = candidate[i + 1 :].lstrip()
            if not rest.startswith(("}", "]")):
                out.append(ch)
            i += 1
        elif ch.isalpha():
            word = re.match(r"[A-Za-z_]+", candidate[i:]).group(0)  # type: ignore[union-attr]
            out.append(_PY_LITERALS.get(word, word))
            i += len(word)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _string_end(text: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return len(text) - 1
