"""Outcomes the page already tells, so no model is asked: an action the browser would refuse (filling a
button, select_option on a radio button), and one that would change nothing (filling a field with what
it holds, repeating the fill, selection or focus that just ran).

Small world models invent changes for such actions ("the submit button is clicked"), and a verifier
that believes them keeps the run repeating an action until the repeat limit ends it. These outcomes
are facts rather than guesses, so the planner may act on them without the overrule margin that
guards against a verifier's mistakes (agent/risk.py: preference_order).
"""
from __future__ import annotations

from collections.abc import Sequence

from envs.actions import ActionError, parse_action
from envs.types import PASSWORD_MASK, Element, Observation

FAILS = "fails"
NO_CHANGE = "no change"

# Actions whose second run on the page they left changes nothing. A click is not one: it may toggle.
_IDEMPOTENT = frozenset({"fill", "select_option", "focus", "hover", "clear"})
# Elements Playwright's fill refuses ("Element is not an <input>, <textarea> or [contenteditable]
# element", "Input of type "checkbox" cannot be filled").
_UNFILLABLE_TAGS = frozenset({"a", "button", "select", "option", "img"})
_UNFILLABLE_INPUT_ROLES = frozenset({"checkbox", "radio", "button", "switch"})


def describe_known(outcome: str, why: str) -> str:
    return f"The action fails: {why}." if outcome == FAILS else f"Nothing changes: {why}."


def known_outcome(action: str, obs: Observation, history: Sequence[str] = ()) -> tuple[str, str] | None:
    """(FAILS or NO_CHANGE, why) when the page itself tells what `action` does; None when only a model
    can say. `history` is the actions run so far, the last one on the page `obs` shows."""
    try:
        parsed = parse_action(action)
    except ActionError:
        return None
    ids = parsed.element_ids()
    element = obs.element(ids[0]) if ids else None
    if element is None:
        return None
    where = f"[{element.id}] is {_a(element)}"
    if parsed.name == "select_option" and element.tag not in ("select", "option", ""):
        return FAILS, f"select_option works only on a drop-down list (<select>), and {where}"
    if parsed.name == "fill" and _unfillable(element):
        return FAILS, f"fill works only on a text field, and {where}"
    presses_enter = parsed.name == "fill" and len(parsed.args) > 2 and bool(parsed.args[2])
    if (history and history[-1] == action and parsed.name in _IDEMPOTENT and not presses_enter
            and not obs.last_action_error):
        return NO_CHANGE, f"{parsed.name} on [{element.id}] just ran; running it again changes nothing"
    if parsed.name == "fill" and not presses_enter and _holds(element, parsed.args[1], action, history):
        return NO_CHANGE, f"[{element.id}] already holds that text"
    if parsed.name == "select_option" and element.tag == "select" and element.value == parsed.args[1]:
        return NO_CHANGE, f"[{element.id}] already shows {element.value!r}"
    if parsed.name in ("select_option", "click") and element.tag == "option" and "selected" in element.states:
        return NO_CHANGE, f"the option [{element.id}] is already the selected one"
    if parsed.name == "focus" and obs.focused_id == element.id:
        return NO_CHANGE, f"[{element.id}] already has the focus"
    return None


def _holds(element: Element, text: str, fill: str, history: Sequence[str]) -> bool:
    """Whether the field shows `text`; a password field shows only that it is filled, so there the last
    action on it tells, when it was this very fill."""
    if element.value != PASSWORD_MASK:
        return element.value is not None and element.value == text
    on_it = [a for a in history if element.id in _ids(a)]
    return bool(on_it) and on_it[-1] == fill


def _ids(action: str) -> list[str]:
    try:
        return parse_action(action).element_ids()
    except ActionError:
        return []


def _unfillable(element: Element) -> bool:
    return element.tag in _UNFILLABLE_TAGS or (element.tag == "input" and element.role in _UNFILLABLE_INPUT_ROLES)


def _a(element: Element) -> str:
    role = element.role.replace("_", " ") or element.tag or "element"
    article = "an" if role[:1] in "aeiou" else "a"
    return f"{article} {role}" + (f" '{element.name}'" if element.name else "")
