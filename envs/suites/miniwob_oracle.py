"""Scripted MiniWoB++ players (the suite's oracle) that see only what an agent sees: the goal text and
the Observation's elements (role, name, value, states, id). They answer with action strings of the
grammar, so a win shows the task is solvable through our observations and actions.

Each task's player is stateless: from the current observation it returns the next action, so a step
that did not take effect is simply tried again. None means it cannot find what it needs.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from envs.types import Element, Observation

TEXT_ROLES = ("textbox", "searchbox", "password")
CHOICE_ROLES = ("combobox", "listbox")


def _quoted(goal: str) -> list[str]:
    return re.findall(r'"([^"]*)"', goal)


def _interactive(obs: Observation, roles: tuple[str, ...] | None = None) -> list[Element]:
    return [e for e in obs.elements if e.id is not None and (roles is None or e.role in roles)]


def _named(obs: Observation, name: str, roles: tuple[str, ...] | None = None) -> Element | None:
    return next((e for e in _interactive(obs, roles) if e.name.strip() == name), None)


def _button(obs: Observation, name: str) -> Element | None:
    return _named(obs, name, ("button",))


def _click(element: Element | None) -> str | None:
    return None if element is None else f"click({element.id!r})"


def _fill(element: Element, text: str) -> str:
    return f"fill({element.id!r}, {text!r})"


def _submit(obs: Observation, label: str = "Submit") -> str | None:
    return _click(_button(obs, label))


def _fill_then_submit(obs: Observation, wanted: list[tuple[Element, str]], submit: str) -> str | None:
    for box, text in wanted:
        masked = "type=password" in box.states and bool(box.value)  # observations hide passwords
        if (box.value or "") != text and not masked:
            return _fill(box, text)
    return _submit(obs, submit)


def click_test(goal: str, obs: Observation) -> str | None:
    buttons = _interactive(obs, ("button",))
    return _click(buttons[0]) if len(buttons) == 1 else None


def click_button(goal: str, obs: Observation) -> str | None:
    (label,) = _quoted(goal)  # 'Click on the "Ok" button.' (case matters: "ok" is another button)
    return _click(_button(obs, label))


def click_link(goal: str, obs: Observation) -> str | None:
    (word,) = _quoted(goal)  # 'Click on the link "nam".'
    return _click(_named(obs, word))


def focus_text(goal: str, obs: Observation) -> str | None:
    boxes = _interactive(obs, TEXT_ROLES)
    return f"focus({boxes[0].id!r})" if boxes else None


def enter_text(goal: str, obs: Observation) -> str | None:
    (text,) = _quoted(goal)  # 'Enter "Jerald" into the text field and press Submit.'
    boxes = _interactive(obs, TEXT_ROLES)
    return _fill_then_submit(obs, [(boxes[0], text)], "Submit") if boxes else None


def _checkbox_style(goal: str, obs: Observation, role: str) -> str | None:
    # 'Select DKkQH, a9 and click Submit.' or 'Select nothing and click Submit.'
    match = re.fullmatch(r"Select (.*) and click Submit\.", goal)
    if match is None:
        return None
    wanted = set() if match[1] == "nothing" else set(match[1].split(", "))
    for box in _interactive(obs, (role,)):
        if (box.name.strip() in wanted) != ("checked" in box.states):
            return _click(box)
    return _submit(obs)


def click_checkboxes(goal: str, obs: Observation) -> str | None:
    return _checkbox_style(goal, obs, "checkbox")


def click_option(goal: str, obs: Observation) -> str | None:
    return _checkbox_style(goal, obs, "radio")


def choose_list(goal: str, obs: Observation) -> str | None:
    match = re.fullmatch(r"Select (.*) from the list and click Submit\.", goal)
    choices = _interactive(obs, CHOICE_ROLES)
    if match is None or not choices:
        return None
    item, select = match[1], choices[0]
    if select.value != item:
        return f"select_option({select.id!r}, {item!r})"
    return _submit(obs)


def login_user(goal: str, obs: Observation) -> str | None:
    username, password = _quoted(goal)  # 'Enter the username "vina" and the password "US" into ...'
    boxes = _interactive(obs, TEXT_ROLES)
    if len(boxes) != 2:
        return None
    return _fill_then_submit(obs, list(zip(boxes, (username, password))), "Login")


def enter_password(goal: str, obs: Observation) -> str | None:
    (password,) = _quoted(goal)  # 'Enter the password "fU" into both text fields and press submit.'
    boxes = _interactive(obs, TEXT_ROLES)
    if len(boxes) != 2:
        return None
    return _fill_then_submit(obs, [(box, password) for box in boxes], "Submit")


def click_tab_2(goal: str, obs: Observation) -> str | None:
    # 'Switch between the tabs to find and click on the link "euismod.".' The link may sit in a tab
    # that is not shown: then open the tab after the one that is selected.
    (word,) = _quoted(goal)
    link = next((e for e in _interactive(obs) if e.name.strip() == word and e.role != "tab"), None)
    if link is not None:
        return _click(link)
    tabs = _interactive(obs, ("tab",))
    selected = next((i for i, tab in enumerate(tabs) if "selected" in tab.states), -1)
    return _click(tabs[(selected + 1) % len(tabs)]) if tabs else None


PLAYERS: dict[str, Callable[[str, Observation], str | None]] = {
    "click-test": click_test,
    "click-button": click_button,
    "click-link": click_link,
    "focus-text": focus_text,
    "enter-text": enter_text,
    "click-checkboxes": click_checkboxes,
    "choose-list": choose_list,
    "login-user": login_user,
    "click-tab-2": click_tab_2,
    "enter-password": enter_password,
    "click-option": click_option,
}
