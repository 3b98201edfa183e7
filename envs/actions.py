"""The action grammar: parsing action strings and their one canonical text form (no browser here;
envs/executor.py runs actions in Playwright). The actions and their parameters are listed in
envs/action_table.py.

The canonical form is BrowserGym's Python-call syntax (`click('e12')`, `fill('e12', 'text')`, …);
WebArena's bracket form (`click [12]`, `type [12] [text] [1]`, `stop [answer]`) parses too. Parsing
uses `ast` (literals only), never `eval`.

WebArena names map to canonical ones: `type` -> fill, `press [keys]` -> keyboard_press (the focused
element), `close_tab` -> tab_close, `stop [answer]` -> send_msg_to_user. Two forms BrowserGym lacks,
needed to express WebArena's actions exactly:
- `fill('e12', 'text', press_enter=True)` is WebArena's `type [12] [text] [1]` (fill, then Enter);
- `scroll('down')` / `scroll('up')` is WebArena's `scroll [down]`: one viewport height.
"""
from __future__ import annotations

import ast
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from envs.action_table import (
    ALL_NAMES,
    BRACKET_NAMES,
    REQUIRED,
    SCROLL_DIRECTIONS,
    SIGNATURES,
    Param,
    bracket_action_starts,
    signature,
    top_level_action_calls,
)
from envs.ids import ID_PATTERN, closest_ids
from envs.types import Observation

ANSWER_ACTIONS = frozenset({"send_msg_to_user", "report_infeasible"})
INFEASIBLE_ANSWER = "N/A"  # WebArena's reference answer for tasks that cannot be done
# The longest a noop waits: ten times BrowserGym's default noop (1000 ms) and three times the settle wait
# after a click (envs/executor.py), enough for a page to settle; a longer wait is better spent as several
# noops, each followed by an observation. A longer noop is canonicalised to this (its text says what ran).
NOOP_MAX_MS = 10_000


class ActionError(ValueError):
    """Anything wrong with an action string before it reaches the page."""


class ActionParseError(ActionError):
    """The string is not one well-formed action; the message says what was expected."""


class UnknownElementError(ActionError):
    """The action names an element id the current observation does not have."""


@dataclass(frozen=True)
class Action:
    """One browser action. `args` are canonical: ids as 'e12', lists as tuples, trailing defaults
    dropped, so equal actions compare (and hash) equal however they were written."""

    name: str
    args: tuple = ()

    def __post_init__(self) -> None:
        if self.name not in SIGNATURES:
            raise ActionParseError(_unknown_name_message(self.name))
        object.__setattr__(self, "args", _canonical_args(self.name, tuple(self.args)))

    @property
    def answer(self) -> str | None:
        if self.name == "send_msg_to_user":
            return self.args[0]
        if self.name == "report_infeasible":
            return INFEASIBLE_ANSWER
        return None

    def element_ids(self) -> list[str]:
        params = SIGNATURES[self.name]
        return [value for param, value in zip(params, self.args) if param.kind == "id"]

    def check_ids(self, obs: Observation) -> None:
        known = obs.ids()
        for element_id in self.element_ids():
            if element_id not in known:
                raise UnknownElementError(_unknown_id_message(element_id, known))

    def __str__(self) -> str:
        return format_action(self)


# ---------------------------------------------------------------------------------------- parsing


def parse_action(text: str) -> Action:
    """One action from a model's output, in BrowserGym call form or WebArena bracket form."""
    if not isinstance(text, str):
        raise ActionParseError(f"an action must be a string, got {type(text).__name__}")
    source = _unwrap(text)
    if not source:
        raise ActionParseError("empty action: write one action, e.g. click('e12') or send_msg_to_user('answer')")
    match = re.match(r"([A-Za-z_]\w*)\s*", source)
    if match is None:
        raise ActionParseError(f"an action starts with its name, e.g. click('e12'); got {source!r}")
    rest = source[match.end():]
    if rest.startswith("("):
        return _parse_call(source)
    return _parse_bracket(match.group(1), rest, source)


def _unwrap(text: str) -> str:
    """Strip whitespace, one wrapping code fence or pair of backticks, and a trailing semicolon."""
    text = text.strip()
    fence = re.fullmatch(r"```[\w+-]*[ \t]*\n?(.*?)\n?[ \t]*```", text, re.DOTALL)
    if fence:
        text = fence.group(1).strip()
    elif len(text) > 1 and text[0] == text[-1] == "`" and "`" not in text[1:-1]:
        text = text[1:-1].strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _parse_call(source: str) -> Action:
    calls = top_level_action_calls(source)
    if len(calls) > 1:
        raise ActionParseError(_two_actions_message(calls, source))
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ActionParseError(f"could not parse {source!r}: {_syntax_hint(exc)}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ActionParseError(f"expected one call like click('e12'), got {source!r}")
    name = call.func.id
    if name not in SIGNATURES:
        raise ActionParseError(_unknown_name_message(name))
    positional = [_literal(node, name, source) for node in call.args]
    keywords = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise ActionParseError(f"{name}: '**' arguments are not allowed: {source!r}")
        keywords[keyword.arg] = _literal(keyword.value, name, source)
    return _build(name, _bind(name, positional, keywords, source), source)


def _syntax_hint(exc: SyntaxError) -> str:
    message = exc.msg or "invalid syntax"
    if "unterminated" in message:
        return f"{message} (a quote is not closed)"
    if "was never closed" in message or "EOF" in message:
        return f"{message} (a bracket is not closed)"
    if "does not match" in message or "unmatched" in message:
        return f"{message} (brackets are unbalanced)"
    return message


def _literal(node: ast.AST, name: str, source: str) -> Any:
    if isinstance(node, ast.Name) and ID_PATTERN.match(node.id):
        return node.id  # click(e12): an unquoted id is still unambiguous
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        snippet = ast.get_source_segment(source, node) or ast.dump(node)
        raise ActionParseError(
            f"{name}: arguments must be literal values (quoted text, numbers, lists), got {snippet} in {source!r}"
        ) from None


def _bind(name: str, positional: list[Any], keywords: dict[str, Any], source: str) -> tuple:
    """Positional + keyword arguments -> positional arguments, defaults filled in."""
    params = SIGNATURES[name]
    required = sum(1 for p in params if p.required)
    if len(positional) > len(params) or len(positional) + len(keywords) < required:
        raise ActionParseError(f"{signature(name)} expects {_count(required, len(params))}, "
                               f"got {len(positional) + len(keywords)}: {source}")
    values: list[Any] = list(positional) + [REQUIRED] * (len(params) - len(positional))
    for key, value in keywords.items():
        index = next((i for i, p in enumerate(params) if key == p.name or key in p.aliases), None)
        if index is None:
            raise ActionParseError(f"{signature(name)} has no argument {key!r}: {source}")
        if values[index] is not REQUIRED:
            raise ActionParseError(f"{signature(name)}: {params[index].name} given twice: {source}")
        values[index] = value
    missing = [p.name for p, v in zip(params, values) if v is REQUIRED and p.required]
    if missing:
        raise ActionParseError(f"{signature(name)} is missing {', '.join(missing)}: {source}")
    return tuple(p.default if v is REQUIRED else v for p, v in zip(params, values))


def _count(low: int, high: int) -> str:
    if low == high:
        return f"{low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"


def _build(name: str, args: tuple, source: str) -> Action:
    try:
        return Action(name, args)
    except ActionParseError as exc:
        raise ActionParseError(f"{exc}: {source}") from None


_SIMPLE_GROUP = re.compile(r"\[\s*([^\[\]]*?)\s*\]")


def _parse_bracket(word: str, rest: str, source: str) -> Action:
    """WebArena's `name [arg] [arg]` form (and a bare name for actions without arguments)."""
    starts = bracket_action_starts(source)
    if len(starts) > 1:
        raise ActionParseError(_two_actions_message(starts, source))
    if word not in ALL_NAMES:
        raise ActionParseError(_unknown_name_message(word))
    name = BRACKET_NAMES.get(word, word)
    if word == "press" and not rest:
        raise ActionParseError(f"press expects a key combination: press [Control+a] or press('e12', 'Enter'): {source}")
    if rest and not rest.startswith("["):
        raise ActionParseError(
            f"expected {word}(...) or {word} [...], got {source!r}; write e.g. click('e12') or click [12]"
        )
    if word == "type":
        return _build(name, _parse_type(rest, source), source)
    element_press = re.fullmatch(r"\[\s*((?:f\d+)?e?\d+)\s*\]\s*\[(.+)\]", rest, re.DOTALL)
    if word == "press" and element_press:  # press [12] [Enter]: keys on an element
        return _build("press", (_bracket_id(element_press.group(1)), element_press.group(2)), source)
    if word == "stop":  # WebArena: stop [answer]; no brackets (or `stop []`) is an empty answer
        return Action(name, (_free_text(rest, word, source) if rest else "",))
    if word in ("goto", "press", "send_msg_to_user", "report_infeasible", "keyboard_press", "fill"):
        # Free text (a URL, keys, an answer) may itself hold brackets: take first '[' to last ']'.
        groups = _free_groups(rest, word, source)
    else:
        groups = _SIMPLE_GROUP.findall(rest)
        if _SIMPLE_GROUP.sub("", rest).strip():
            raise ActionParseError(
                f"{word} [...] takes {_count(0, len(SIGNATURES[name]))} in brackets, like "
                f"{_bracket_example(word)}; got {source!r}"
            )
    params = SIGNATURES[name]
    values = [_from_bracket(p, g) for p, g in zip(params, groups)] + groups[len(params):]
    return _build(name, _bind(name, values, {}, source), source)


def _free_groups(rest: str, word: str, source: str) -> list[str]:
    """[id] [free text] or [free text]: the id group is simple, the text runs to the last ']'."""
    groups: list[str] = []
    if SIGNATURES[BRACKET_NAMES.get(word, word)][0].kind == "id":
        first = _SIMPLE_GROUP.match(rest)
        if first is None:
            raise ActionParseError(f"{word} expects an element id in brackets first, like {word} [12] [...]: {source}")
        groups.append(first.group(1))
        rest = rest[first.end():].lstrip()
    if rest:
        groups.append(_free_text(rest, word, source))
    return groups


def _free_text(rest: str, word: str, source: str) -> str:
    if not (rest.startswith("[") and rest.endswith("]")):
        raise ActionParseError(f"{word} [...]: the text must be inside one pair of brackets: {source}")
    return rest[1:-1]


def _parse_type(rest: str, source: str) -> tuple:
    """type [id] [text] [press_enter_after]: the text may hold brackets; the flag defaults to 1."""
    first = _SIMPLE_GROUP.match(rest)
    if first is None:
        raise ActionParseError(f"type expects type [id] [text] [0|1], like type [12] [hello] [1]: {source}")
    rest = rest[first.end():].strip()
    press_enter = True
    flag = re.search(r"\[\s*([01])\s*\]$", rest)
    if flag and rest[: flag.start()].rstrip().endswith("]"):
        press_enter = flag.group(1) == "1"
        rest = rest[: flag.start()].rstrip()
    if not rest:
        raise ActionParseError(f"type expects type [id] [text] [0|1], like type [12] [hello] [1]: {source}")
    return (_bracket_id(first.group(1)), _free_text(rest, "type", source), press_enter)


def _from_bracket(param: Param, text: str) -> Any:
    """Bracket arguments are text; turn the ones that are numbers into numbers."""
    if param.kind in ("int", "number", "scroll_x", "id") and re.fullmatch(r"-?\d+", text.strip()):
        return int(text)
    if param.kind in ("number", "scroll_x") and re.fullmatch(r"-?\d+\.\d*", text.strip()):
        return float(text)
    if param.kind == "scroll_x":
        return text.strip().lower()
    return text


def _bracket_id(text: str) -> str | int:
    return int(text) if text.strip().isdigit() else text


def _bracket_example(word: str) -> str:
    return {"scroll": "scroll [down]", "tab_focus": "tab_focus [1]"}.get(
        word, f"{word} [12]" if SIGNATURES[BRACKET_NAMES.get(word, word)] else word
    )


def _two_actions_message(names: list[str], source: str) -> str:
    return (f"found {len(names)} actions ({', '.join(names)}) in one string; give exactly one action per "
            f"step: {source!r}")


def _unknown_name_message(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(ALL_NAMES), n=1)
    hint = f"; did you mean {close[0]}?" if close else "."
    return f"unknown action {name!r}{hint} Known actions: {', '.join(SIGNATURES)}"


# ------------------------------------------------------------------------------- canonical values


def _canonical_args(name: str, args: tuple) -> tuple:
    params = SIGNATURES[name]
    required = sum(1 for p in params if p.required)
    if not required <= len(args) <= len(params):
        raise ActionParseError(f"{signature(name)} expects {_count(required, len(params))}, got {len(args)}")
    values = [_canonical_value(name, p, v) for p, v in zip(params, args)]
    if name == "noop" and values:
        values[0] = min(max(values[0], 0), NOOP_MAX_MS)  # noop(1e12) must not sleep for decades
    if name == "scroll" and isinstance(values[0], str) and len(values) > 1 and values[1] != 0:
        raise ActionParseError(f"scroll('{values[0]}') takes no second argument; use scroll(delta_x, delta_y)")
    while values and len(values) > required and values[-1] == params[len(values) - 1].default:
        values.pop()  # trailing defaults: click('e1', button='left') is click('e1')
    return tuple(values)


def _canonical_value(name: str, param: Param, value: Any) -> Any:
    where = f"{name}: {param.name}"
    kind = param.kind
    if kind == "id":
        return _canonical_id(value, where)
    if kind == "text":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # fill('e3', 42) means the text "42"
        if not isinstance(value, str):
            raise ActionParseError(f"{where} must be text in quotes, got {value!r}")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1) or value in ("0", "1"):
            return bool(int(value))
        raise ActionParseError(f"{where} must be True or False, got {value!r}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ActionParseError(f"{where} must be a whole number, got {value!r}")
    if kind in ("number", "scroll_x"):
        if kind == "scroll_x" and isinstance(value, str):
            direction = value.strip().lower()
            if direction not in SCROLL_DIRECTIONS:
                raise ActionParseError(
                    f"scroll takes (delta_x, delta_y) in pixels or one of {', '.join(SCROLL_DIRECTIONS)}, got {value!r}"
                )
            return direction
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return value
        raise ActionParseError(f"{where} must be a number, got {value!r}")
    if kind == "button":
        if value not in ("left", "middle", "right"):
            raise ActionParseError(f"{where} must be 'left', 'middle' or 'right', got {value!r}")
        return value
    if kind in ("strings", "strings_or_one"):
        if kind == "strings_or_one" and isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        expected = "text or a list of texts" if kind == "strings_or_one" else "a list of texts"
        raise ActionParseError(f"{where} must be {expected}, got {value!r}")
    raise AssertionError(f"unhandled parameter kind {kind}")


def _canonical_id(value: Any, where: str) -> str:
    """'e12' stays; 12 and '12' become 'e12'; frame ids like 'f1e3' stay."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"e{value}"
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return f"e{int(text)}"
        if ID_PATTERN.match(text):
            return text
    raise ActionParseError(f"{where} must be an element id like 'e12' (or 'f1e3' inside a frame), got {value!r}")


def _unknown_id_message(element_id: str, known: set[str]) -> str:
    if not known:
        return f"no element {element_id!r} on this page; the page has no interactive elements"
    closest = closest_ids(element_id, known, 3)
    return f"no element {element_id!r} on this page; closest ids: {', '.join(closest)}"


# ------------------------------------------------------------------------------------ formatting


def format_action(action: Action) -> str:
    """The canonical BrowserGym text of an action, e.g. fill('e12', 'hello'); parses back to it."""
    params = SIGNATURES[action.name]
    parts = []
    for param, value in zip(params, action.args):
        text = format_value(value)
        parts.append(f"{param.name}={text}" if param.keyword else text)
    return f"{action.name}({', '.join(parts)})"


def format_value(value: Any) -> str:
    """One argument in the canonical text form: repr, with tuples written as lists."""
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value)
