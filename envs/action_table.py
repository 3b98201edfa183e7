"""The actions there are: each one's parameters (kind, default, aliases), WebArena's names for them,
how each is called, and finding action names in a text (several actions in one string).

envs/actions.py parses and formats actions with this table.
"""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from typing import Any

SCROLL_DIRECTIONS = ("up", "down", "left", "right")

REQUIRED = object()  # the default of a parameter that has none


@dataclass(frozen=True)
class Param:
    """One parameter of an action; `kind` says which values it takes (envs/actions.py checks them)."""

    name: str
    kind: str  # id | text | int | number | bool | button | strings | strings_or_one | scroll_x
    default: Any = REQUIRED
    keyword: bool = False  # written as name=value in the canonical form
    aliases: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe(self) -> str:
        if self.required:
            return self.name
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return f"{self.name}={default!r}"


_ID = Param("id", "id", aliases=("bid",))
_CLICK = (
    _ID,
    Param("button", "button", "left", keyword=True),
    Param("modifiers", "strings", (), keyword=True),
)
SIGNATURES: dict[str, tuple[Param, ...]] = {
    "click": _CLICK,
    "dblclick": _CLICK,
    "fill": (_ID, Param("value", "text", aliases=("text",)), Param("press_enter", "bool", False, keyword=True)),
    "select_option": (_ID, Param("options", "strings_or_one", aliases=("option",))),
    "hover": (_ID,),
    "press": (_ID, Param("key_comb", "text", aliases=("key",))),
    "focus": (_ID,),
    "clear": (_ID,),
    "scroll": (Param("delta_x", "scroll_x"), Param("delta_y", "number", 0)),
    "goto": (Param("url", "text"),),
    "go_back": (),
    "go_forward": (),
    "new_tab": (),
    "tab_focus": (Param("index", "int"),),
    "tab_close": (),
    "send_msg_to_user": (Param("text", "text"),),
    "report_infeasible": (Param("reason", "text"),),
    "noop": (Param("wait_ms", "number", 1000),),
    "drag_and_drop": (Param("from_id", "id", aliases=("from_bid",)), Param("to_id", "id", aliases=("to_bid",))),
    "upload_file": (_ID, Param("file", "strings_or_one", aliases=("files",))),
    "keyboard_press": (Param("key", "text"),),
}
# WebArena's bracket names that differ from the canonical ones.
BRACKET_NAMES = {"type": "fill", "press": "keyboard_press", "close_tab": "tab_close", "stop": "send_msg_to_user"}
ALL_NAMES = frozenset(SIGNATURES) | frozenset(BRACKET_NAMES)


def signature(name: str) -> str:
    """`fill(id, value, press_enter=False)`: how an action is called, for messages and prompts."""
    return f"{name}({', '.join(p.describe() for p in SIGNATURES[name])})"


def top_level_action_calls(source: str) -> list[str]:
    """Names of known actions called at bracket depth 0 — more than one means several actions."""
    names: list[str] = []
    depth = 0
    previous: tokenize.TokenInfo | None = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.OP and token.string in "([{":
                if token.string == "(" and depth == 0 and previous is not None and previous.type == tokenize.NAME:
                    if previous.string in ALL_NAMES:
                        names.append(previous.string)
                depth += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                depth = max(0, depth - 1)
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                previous = token
    except (tokenize.TokenError, SyntaxError):
        pass  # unbalanced quotes or brackets: ast.parse reports them with a better message
    return names


_NAME_ALTERNATIVES = "|".join(sorted(ALL_NAMES, key=len, reverse=True))
# An action name where a new action could start (string start, a new line, after `;`, `]` or `)`),
# followed by its arguments or nothing.
_STATEMENT_START = re.compile(r"(?:^|[\n;\])])[ \t]*(" + _NAME_ALTERNATIVES + r")\b(?=[ \t]*(?:\[|\(|$|\n))")


def bracket_action_starts(source: str) -> list[str]:
    """Names of known actions where an action could start — more than one means several actions."""
    return [m.group(1) for m in _STATEMENT_START.finditer(source)]
