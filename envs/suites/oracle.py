"""Running a task's oracle solution: an action sequence whose element references are resolved
against the page as it is at each step.

Element ids are handed out when a page is observed, so an oracle cannot name them in advance.
Instead an oracle step names elements by role and accessible name, in our action grammar:

    click(@link 'Sign in')
    fill(@textbox 'Search', 'tea', press_enter=True)
    select_option(@combobox 'Sort By', 'Price: Low to High')
    click(@button 'Update' #2)          # the 2nd element that matches
    goto('__SHOPPING__/cart')           # placeholders are resolved by oracle_of(config, site_urls)
    send_msg_to_user('$12.50')

A reference matches an interactive element of the current observation whose role is the given one
and whose name equals the given one (whitespace collapsed), exactly first, then ignoring case. An
unmatched reference fails with a message listing the elements with similar names.
"""
from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envs.actions import ANSWER_ACTIONS, Action, parse_action
from envs.types import Element, Observation

# @role 'name' or @role "name", then an optional #N; the name is a Python string literal.
_REF = re.compile(r"""@(?P<role>[a-z][a-z_]*)\s+"""
                  r"""(?P<name>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")(?:\s*\#(?P<nth>\d+))?""")
_PLACEHOLDER = re.compile(r"__(?:SHOPPING_ADMIN|SHOPPING|REDDIT|GITLAB|WIKIPEDIA|MAP|HOMEPAGE)__")


class OracleError(RuntimeError):
    """An oracle step that cannot be written, resolved or executed: the task's oracle is wrong."""


@dataclass(frozen=True)
class ElementRef:
    """An element named by role and accessible name; `nth` picks among several matches (1-based)."""

    role: str
    name: str
    nth: int = 1

    def __str__(self) -> str:
        return f"@{self.role} {self.name!r}" + (f" #{self.nth}" if self.nth != 1 else "")


def _replace_refs(text: str, replace: Callable[[ElementRef], str]) -> str:
    """`text` with every element reference outside string literals replaced by replace(ref)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "'\"":
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        elif char == "@":
            match = _REF.match(text, i)
            if match is None:
                raise OracleError(f"malformed element reference at {text[i:i + 30]!r} in {text!r}; "
                                  "write it as @role 'accessible name' (optionally followed by #2)")
            name = ast.literal_eval(match.group("name"))
            nth = int(match.group("nth") or 1)
            if nth < 1:
                raise OracleError(f"#{nth} in {text!r}: matches are counted from #1")
            out.append(repr(replace(ElementRef(match.group("role"), name, nth))))
            i = match.end()
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """The index just past the string literal that starts at `start` (backslash escapes honoured)."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise OracleError(f"unterminated string in oracle step {text!r}")


def check_step(text: str) -> Action:
    """Parse an oracle step without a page (references stand in as 'e0'): catches grammar mistakes
    before a run. Raises OracleError."""
    try:
        return parse_action(_replace_refs(text, lambda ref: "e0"))
    except ValueError as exc:
        raise OracleError(f"oracle step {text!r} is not a valid action: {exc}") from exc


def _normal(name: str) -> str:
    return " ".join(name.split())


def find_element(obs: Observation, ref: ElementRef) -> Element:
    """The element `ref` names in `obs`. Raises OracleError listing similar elements when none matches."""
    candidates = [e for e in obs.elements if e.id is not None and e.role == ref.role]
    wanted = _normal(ref.name)
    matches = [e for e in candidates if _normal(e.name) == wanted]
    if not matches:
        matches = [e for e in candidates if _normal(e.name).lower() == wanted.lower()]
    if len(matches) >= ref.nth:
        return matches[ref.nth - 1]
    if matches:
        raise OracleError(f"{ref}: only {len(matches)} {ref.role}(s) named {ref.name!r} on {obs.url}")
    raise OracleError(f"no {ref.role} named {ref.name!r} on {obs.url}; {_similar(obs, ref)}")


def _similar(obs: Observation, ref: ElementRef) -> str:
    interactive = [e for e in obs.elements if e.id is not None]
    by_name: dict[str, list[Element]] = {}
    for element in interactive:
        by_name.setdefault(_normal(element.name).lower(), []).append(element)
    close = difflib.get_close_matches(_normal(ref.name).lower(), list(by_name), n=5, cutoff=0.5)
    shown = [f"{e.role} {e.name!r} ({e.id})" for name in close for e in by_name[name]][:6]
    if not shown:  # nothing named alike: at least show what this role offers
        shown = [f"{e.role} {e.name!r} ({e.id})" for e in interactive if e.role == ref.role][:6]
    return "similar elements: " + ", ".join(shown) if shown else "the page has no such elements"


def resolve_step(text: str, obs: Observation) -> Action:
    """One oracle step as an Action whose references are the ids of `obs`'s elements."""
    resolved = _replace_refs(text, lambda ref: find_element(obs, ref).id or "")
    try:
        return parse_action(resolved)
    except ValueError as exc:
        raise OracleError(f"oracle step {text!r} is not a valid action: {exc}") from exc


def check_sequence(actions: list[str] | tuple[str, ...]) -> list[Action]:
    """Every step parses, and the sequence ends with its only answer (send_msg_to_user or
    report_infeasible): the evaluator scores that answer. Raises OracleError."""
    if not actions:
        raise OracleError("an oracle sequence needs at least one action (its last one gives the answer)")
    parsed = [check_step(step) for step in actions]
    answers = [i for i, action in enumerate(parsed) if action.name in ANSWER_ACTIONS]
    if answers != [len(parsed) - 1]:
        raise OracleError(
            f"an oracle sequence ends with exactly one answer action (send_msg_to_user or report_infeasible); "
            f"got {list(actions)!r}")
    return parsed


async def run_oracle(env: Any, task: Any, actions: list[str] | tuple[str, ...]) -> tuple[float, dict[str, Any]]:
    """Reset `env` to `task`, then resolve and execute `actions` one by one through env.step. Returns
    the evaluator's score for the final answer and the last step's info, plus the executed actions
    in canonical form (`info["actions"]`). A step that cannot be resolved or fails in the browser
    raises OracleError naming the step: an oracle must run cleanly to mean anything."""
    check_sequence(actions)
    unresolved = sorted({p for step in actions for p in _PLACEHOLDER.findall(step)})
    if unresolved:
        raise OracleError(f"task {task.id}: site placeholder(s) {', '.join(unresolved)} in the oracle; "
                          "resolve them with oracle_of(config, site_urls)")
    obs, _ = await env.reset(task)
    executed: list[str] = []
    reward, info = 0.0, {}
    for number, step in enumerate(actions, start=1):
        try:
            action = resolve_step(step, obs)
        except OracleError as exc:
            raise OracleError(f"task {task.id}, step {number} {step!r}: {exc}") from exc
        executed.append(str(action))
        obs, reward, done, _truncated, info = await env.step(action)
        if obs.last_action_error:
            raise OracleError(f"task {task.id}, step {number} {step!r} failed on {obs.url}: {obs.last_action_error}")
        if done:
            break
    info = dict(info, actions=executed)
    return float(reward), info
