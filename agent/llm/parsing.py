"""Getting a JSON object out of a model's plain-text answer (prose, code fences, small syntax slips).

The work is linear in the answer's length, whatever the answer: a model (or a page speaking through
it) can send 20,000 `{` or a megabyte of nested braces, and the step must not stall on it. Each
balanced `{...}` span is found by one scan that also settles every brace inside it, a failed strict
parse is repaired only where a repair can help, and the characters examined are counted against a
budget proportional to the answer (WORK_PER_CHAR): past it, the answer holds no object we look for.
"""
from __future__ import annotations

import heapq
import json
import math
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
# What the repair rewrites, each found whole: a JSON string (kept, so nothing in it is rewritten), a
# single-quoted string, a comma before a closing bracket, a Python literal.
_REPAIRABLE = re.compile(r""""(?:[^"\\]|\\.)*+"|'((?:[^'\\]|\\.)*+)'|,(?=\s*[}\]])|\b(?:True|False|None)\b""",
                         re.DOTALL)
# An object opens with a key (quoted, or single-quoted for the repair) or closes at once: `{{` never does.
_OBJECT_START = re.compile(r"""\{\s*["'}]""")
_BRACE_SCAN = re.compile(r"""[{}"']""")  # what changes a scan's state; everything else is skipped over
# The rest of a string after its opening quote, up to its closing one (a backslash escapes any character).
_STRING_REST = {quote: re.compile(rf"[^{quote}\\]*+(?:\\.[^{quote}\\]*+)*+{quote}", re.DOTALL) for quote in "\"'"}
_DECODER = json.JSONDecoder()
# Characters examined per character of the answer (plus a floor for short answers) before giving up. An
# ordinary answer needs about four passes (whole text, fences, the span scan, the span's parse).
WORK_PER_CHAR = 8
WORK_FLOOR = 100_000


class _Work:
    """What is left of an answer's budget of characters examined."""

    def __init__(self, text: str) -> None:
        self.left = WORK_PER_CHAR * len(text) + WORK_FLOOR

    def spend(self, chars: int) -> bool:
        """Count `chars` examined; False once the budget is spent."""
        self.left -= chars
        return self.left >= 0


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`, or None when there is none.

    Tries, in order: the whole text, the contents of ``` fences, then the balanced `{...}` spans (each
    scan's spans by where they start). Each candidate is parsed strictly first, then after cheap
    repairs (trailing commas, single-quoted strings, Python's True/False/None).
    """
    if not text:
        return None
    work = _Work(text)
    stripped = text.strip()
    for candidate in (stripped, *(m.group(1).strip() for m in _FENCE.finditer(text))):
        parsed = _parse_object(candidate, 0, len(candidate), work)
        if parsed is not None:
            return parsed
        if work.left < 0:
            return None
    for start, end in _balanced_spans(text, work):
        parsed = _parse_object(text, start, end + 1, work)
        if parsed is not None:
            return parsed
        if work.left < 0:
            return None
    return None


def _parse_object(text: str, start: int, end: int, work: _Work) -> dict[str, Any] | None:
    """The object text[start:end] holds, strictly or after repairs; the text is not copied unless repaired."""
    if not _OBJECT_START.match(text, start):
        return None
    try:
        value, stop = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        work.spend(exc.pos - start + 1)
        if not _repair_may_help(text, exc.pos) or not work.spend(end - start):
            return None
    except RecursionError:  # nested deeper than the decoder goes: not an answer we can use
        work.spend(end - start)
        return None
    else:
        work.spend(stop - start)
        if isinstance(value, dict) and not text[stop:end].strip():
            return value
        return None
    try:
        value = json.loads(_repair(text[start:end]))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _repair_may_help(text: str, error_at: int) -> bool:
    """Whether the strict parse stopped where a repair changes something: a single quote, a word
    (True/False/None), or a closing bracket after a trailing comma. Everything before the error is
    valid JSON, which the repair leaves as it is."""
    char = text[error_at : error_at + 1]
    return char in ("'", "}", "]") or char.isalpha() or char == "_"


def _balanced_spans(text: str, work: _Work) -> Iterator[tuple[int, int]]:
    """(start, end) of each balanced `{...}` span, braces inside quoted strings skipped, by where
    they start. One scan over the text settles every brace it meets outside quotes (a scan from that
    brace would see the same); a brace it met inside quotes gets a scan of its own, right after the
    span it sits in. Nothing after the last `}` can close."""
    limit = text.rfind("}") + 1
    settled, tried = bytearray(limit), bytearray(limit)
    for group in _scan(text, text.find("{", 0, limit), limit, settled, continuous=True):
        if not work.spend(group.chars):
            return
        yield from _untried(group.spans, tried)
        quoted = list(group.quoted)  # sorted already: a heap
        while quoted:
            start = heapq.heappop(quoted)
            if settled[start]:
                continue
            for inner in _scan(text, start, limit, settled, continuous=False):
                if not work.spend(inner.chars):
                    return
                yield from _untried(inner.spans, tried)
                for brace in inner.quoted:
                    heapq.heappush(quoted, brace)


class _Group(NamedTuple):
    """What a scan found in one outermost span: its balanced spans by start, the braces it saw inside
    quotes, and the characters it covered."""

    spans: list[tuple[int, int]]
    quoted: list[int]
    chars: int


def _untried(spans: list[tuple[int, int]], tried: bytearray) -> Iterator[tuple[int, int]]:
    for start, end in spans:
        if not tried[start]:
            tried[start] = 1
            yield start, end


def _scan(text: str, start: int, limit: int, settled: bytearray, *, continuous: bool) -> Iterator[_Group]:
    """Scan from the `{` at `start` (-1: none) to `limit`, a group per outermost span it closes (and
    one for a span left open at `limit`). `continuous`: go on to the next span; between spans only a
    `{` matters, so each span is scanned as if on its own. A quoted string is skipped in one step."""
    open_braces: list[int] = []
    spans: list[tuple[int, int]] = []
    quoted: list[int] = []
    group_start = position = start
    while 0 <= position < limit:
        match = _BRACE_SCAN.search(text, position, limit)
        if match is None:
            break
        i, char = match.start(), match.group()
        position = i + 1
        if not open_braces:  # between spans
            if char == "{":
                open_braces.append(i)
                settled[i] = 1
                group_start = i
        elif char in "\"'":
            closing = _STRING_REST[char].match(text, i + 1, limit)
            position = closing.end() if closing else limit  # a string left open runs to the end
            brace = text.find("{", i + 1, position)
            while brace != -1:
                quoted.append(brace)
                brace = text.find("{", brace + 1, position)
        elif char == "{":
            open_braces.append(i)
            settled[i] = 1
        else:
            spans.append((open_braces.pop(), i))
            if not open_braces:
                yield _Group(sorted(spans), quoted, i + 1 - group_start)
                if not continuous:
                    return
                spans, quoted = [], []
    if open_braces:
        yield _Group(sorted(spans), quoted, limit - group_start)


def _repair(candidate: str) -> str:
    """Rewrite single-quoted strings as JSON strings, drop trailing commas, map Python literals
    (double-quoted strings are left as they are)."""
    return _REPAIRABLE.sub(_repaired, candidate)


def _repaired(match: re.Match[str]) -> str:
    token = match.group()
    if token[0] == '"':
        return token
    if token[0] == "'":
        return json.dumps(match.group(1).replace("\\'", "'"))
    if token[0] == ",":
        return ""
    return _PY_LITERALS[token]


OPENER_WINDOW = 512  # characters before a value searched for its key: the key, the colon, spacing
# A token and the endpoint's most likely tokens at its position (its own among them), with log-probabilities.
TokenLogprobs = tuple[str, list[tuple[str, float]]]


def enum_fields(schema: dict[str, Any] | None) -> dict[str, list[str]]:
    """The schema's top-level string properties that take one of a fixed list of values."""
    properties = (schema or {}).get("properties") or {}
    return {name: [str(v) for v in spec["enum"]] for name, spec in properties.items()
            if isinstance(spec, dict) and isinstance(spec.get("enum"), list) and spec["enum"]}


def enum_probabilities(tokens: list[TokenLogprobs], fields: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Per field of `fields` the answer wrote, the model's probability of each allowed value where it
    wrote that field's value: the likely tokens at the value's first token, each credited to the values it
    begins, renormalised over the allowed ones. The probabilities are the model's own (before any
    grammar), so a sampled verdict of "complete" at p = 0.55 reads as 0.55, not as certainty. A field
    whose first value token no allowed value begins with is left out."""
    found: dict[str, dict[str, float]] = {}
    openers = {name: re.compile(rf'"{re.escape(name)}"\s*:\s*("?)\s*$') for name in fields}
    text = ""  # the answer so far, its last OPENER_WINDOW characters: enough to see a key open its value
    for token, likely in tokens:
        for name, values in fields.items():
            if name in found:
                continue
            opened = openers[name].search(text)
            if opened is None:
                continue
            mass = dict.fromkeys(values, 0.0)
            for alternative, logprob in likely:
                piece = alternative.lstrip()
                if not opened.group(1):  # the quote may come with the value's first token
                    if not piece.startswith('"'):
                        continue
                    piece = piece[1:]
                piece = piece.rstrip('",} \n').lower()
                begun = [v for v in values if piece and (v.lower().startswith(piece) or piece.startswith(v.lower()))]
                for value in begun:
                    mass[value] += math.exp(logprob) / len(begun)
            total = sum(mass.values())
            if total > 0:
                found[name] = {value: round(p / total, 4) for value, p in mass.items()}
        text = (text + token)[-OPENER_WINDOW:]  # a search of the whole answer per token would be quadratic
    return found
