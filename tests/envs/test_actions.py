"""The action grammar: parsing, canonical form, error messages (no browser)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from envs.actions import (
    ANSWER_ACTIONS,
    Action,
    ActionError,
    ActionParseError,
    UnknownElementError,
    format_action,
    parse_action,
)
from envs.types import Element, Observation

# ------------------------------------------------------------------------------------- parsing

# (action string as a model may write it, the canonical form it must become)
FORMS = [
    ("click('e12')", "click('e12')"),
    ("click(12)", "click('e12')"),
    ("click('12')", "click('e12')"),
    ("click(e12)", "click('e12')"),
    ("click('f1e3')", "click('f1e3')"),
    ("click(bid='e4', button='right')", "click('e4', button='right')"),
    ("click('e4', 'left', ['Shift'])", "click('e4', button='left', modifiers=['Shift'])"),
    ("click('e4', button='left')", "click('e4')"),
    ("dblclick('e7')", "dblclick('e7')"),
    ("fill('e2', 'hello')", "fill('e2', 'hello')"),
    ('fill("e2", "it\'s \\"quoted\\"\\nand multi-line")', "fill('e2', 'it\\'s \"quoted\"\\nand multi-line')"),
    ("fill('e2', 42)", "fill('e2', '42')"),
    ("fill(bid='e2', value='x')", "fill('e2', 'x')"),
    ("select_option('e3', 'France')", "select_option('e3', 'France')"),
    ("select_option('e4', ['Cheese', 'ham'])", "select_option('e4', ['Cheese', 'ham'])"),
    ("hover('e8')", "hover('e8')"),
    ("press('e9', 'Control+a')", "press('e9', 'Control+a')"),
    ("focus('e20')", "focus('e20')"),
    ("clear('e19')", "clear('e19')"),
    ("scroll(0, 200)", "scroll(0, 200)"),
    ("scroll(-50.5, 100)", "scroll(-50.5, 100)"),
    ("goto('http://127.0.0.1:8000/a?b=c')", "goto('http://127.0.0.1:8000/a?b=c')"),
    ("go_back()", "go_back()"),
    ("go_forward()", "go_forward()"),
    ("new_tab()", "new_tab()"),
    ("tab_focus(1)", "tab_focus(1)"),
    ("tab_close()", "tab_close()"),
    ("send_msg_to_user('$279.49')", "send_msg_to_user('$279.49')"),
    ("report_infeasible('no such product')", "report_infeasible('no such product')"),
    ("noop()", "noop()"),
    ("noop(1000)", "noop()"),
    ("noop(500)", "noop(500)"),
    ("noop(1e12)", "noop(10000)"),  # capped: a page settles long before; the text says what runs
    ("noop(-5)", "noop(0)"),
    ("drag_and_drop('e16', 'e17')", "drag_and_drop('e16', 'e17')"),
    ("upload_file('e15', '/tmp/a.txt')", "upload_file('e15', '/tmp/a.txt')"),
    ("upload_file('e15', ['/tmp/a.txt', '/tmp/b.txt'])", "upload_file('e15', ['/tmp/a.txt', '/tmp/b.txt'])"),
    ("keyboard_press('Enter')", "keyboard_press('Enter')"),
    # WebArena bracket forms
    ("click [12]", "click('e12')"),
    ("hover [12]", "hover('e12')"),
    ("type [12] [hello world] [1]", "fill('e12', 'hello world', press_enter=True)"),
    ("type [12] [hello world] [0]", "fill('e12', 'hello world')"),
    ("type [12] [hello world]", "fill('e12', 'hello world', press_enter=True)"),
    ("type [5] [a [b] c] [0]", "fill('e5', 'a [b] c')"),
    ("type [5] [say \"hi\" and 'bye'] [0]", "fill('e5', 'say \"hi\" and \\'bye\\'')"),
    ("type [5] [unbalanced ] bracket] [1]", "fill('e5', 'unbalanced ] bracket', press_enter=True)"),
    ("press [Control+a]", "keyboard_press('Control+a')"),
    ("scroll [down]", "scroll('down')"),
    ("scroll [up]", "scroll('up')"),
    ("new_tab", "new_tab()"),
    ("tab_focus [1]", "tab_focus(1)"),
    ("close_tab", "tab_close()"),
    ("goto [http://localhost:7770/search?q=[x]]", "goto('http://localhost:7770/search?q=[x]')"),
    ("go_back", "go_back()"),
    ("go_forward", "go_forward()"),
    ("stop [$279.49]", "send_msg_to_user('$279.49')"),
    ("stop [the [first] one]", "send_msg_to_user('the [first] one')"),
    ("stop []", "send_msg_to_user('')"),
    ("stop", "send_msg_to_user('')"),
    # what models wrap actions in
    ("  click('e3')  ", "click('e3')"),
    ("click('e3');", "click('e3')"),
    ("`click('e3')`", "click('e3')"),
    ("```\nclick('e3')\n```", "click('e3')"),
    ("```python\nfill('e3', 'x')\n```", "fill('e3', 'x')"),
    ("```\nstop [done]\n```", "send_msg_to_user('done')"),
]


@pytest.mark.parametrize("text, canonical", FORMS)
def test_every_form_parses_to_its_canonical_text_and_round_trips(text, canonical):
    action = parse_action(text)
    assert format_action(action) == canonical
    assert str(action) == canonical
    assert parse_action(canonical) == action


def test_equal_actions_are_equal_however_written():
    assert Action("click", (12,)) == parse_action("click [12]") == Action("click", ("e12", "left", []))
    assert Action("noop", (1000,)) == Action("noop", ())
    assert len({parse_action("select_option('e4', ['a'])"), parse_action("select_option(4, ['a'])")}) == 1


def test_webarena_type_is_fill_then_enter():
    assert parse_action("type [12] [hi] [1]") == Action("fill", ("e12", "hi", True))
    assert parse_action("type [12] [hi] [0]") == Action("fill", ("e12", "hi"))


def test_answers():
    assert parse_action("stop [42]").answer == "42"
    assert parse_action("send_msg_to_user('Paris')").answer == "Paris"
    assert parse_action("report_infeasible('not possible')").answer == "N/A"
    assert parse_action("click('e1')").answer is None
    assert ANSWER_ACTIONS == {"send_msg_to_user", "report_infeasible"}


def test_element_ids():
    assert parse_action("drag_and_drop(3, 'f1e4')").element_ids() == ["e3", "f1e4"]
    assert parse_action("fill('e2', 'e5')").element_ids() == ["e2"]
    assert parse_action("goto('http://x')").element_ids() == []


MALFORMED = [
    ("", "empty action"),
    ("   ", "empty action"),
    ("fill('e3')", r"fill\(id, value, press_enter=False\) expects 2 to 3 arguments, got 1: fill\('e3'\)"),
    ("click()", r"click\(id, button='left', modifiers=\[\]\) expects 1 to 3 arguments, got 0"),
    ("go_back(1)", r"go_back\(\) expects 0 arguments, got 1"),
    ("clik('e3')", "unknown action 'clik'; did you mean click?"),
    ("type_text [3] [x]", "unknown action 'type_text'"),
    ("fill('e3', 'unclosed)", "not closed"),
    ("click('e3'", "not closed"),
    ("click('e1'); click('e2')", r"found 2 actions \(click, click\).*one action per step"),
    ("click('e1')\nfill('e2', 'x')", r"found 2 actions \(click, fill\)"),
    ("click [1] click [2]", r"found 2 actions \(click, click\)"),
    ("type [3] [abc] [1]\nstop [done]", r"found 2 actions \(type, stop\)"),
    ("click('link')", "must be an element id like 'e12'"),
    ("click('e1', button='top')", "button must be 'left', 'middle' or 'right'"),
    ("click('e1', colour='red')", "has no argument 'colour'"),
    ("tab_focus('first')", "index must be a whole number"),
    ("scroll(0, 'lots')", "delta_y must be a number"),
    ("scroll [sideways]", "scroll takes"),
    ("fill('e1', __import__('os').system('ls'))", "arguments must be literal values"),
    ("click('e1').then()", r"expected one call like click\('e12'\)"),
    ("type [12]", r"type expects type \[id\] \[text\] \[0\|1\]"),
    ("goto http://x", r"expected goto\(...\) or goto \[...\]"),
    ("1 + 1", "an action starts with its name"),
]


@pytest.mark.parametrize("text, message", MALFORMED)
def test_malformed_actions_say_what_was_expected(text, message):
    with pytest.raises(ActionParseError, match=message):
        parse_action(text)


def test_parse_errors_are_value_errors_the_env_can_catch():
    assert issubclass(ActionParseError, ActionError) and issubclass(ActionError, ValueError)
    assert issubclass(UnknownElementError, ActionError)


def _observation(*ids: str) -> Observation:
    return Observation(url="about:blank", title="", elements=[Element(id=i, role="button", name=i) for i in ids])


def test_unknown_ids_name_the_closest_existing_ids():
    obs = _observation("e1", "e2", "e9", "e40", "e97", "e98", "e120", "f1e99")
    parse_action("click('e9')").check_ids(obs)  # known id: no error
    with pytest.raises(UnknownElementError, match=r"no element 'e99' on this page; closest ids: e98, e97, e9$"):
        parse_action("click(99)").check_ids(obs)
    with pytest.raises(UnknownElementError, match="'e77'"):
        parse_action("drag_and_drop('e1', 'e77')").check_ids(obs)
    with pytest.raises(UnknownElementError, match="no interactive elements"):
        parse_action("click('e1')").check_ids(_observation())
    parse_action("goto('http://x')").check_ids(_observation())  # no ids to check


def test_the_grammar_and_the_rendering_need_no_browser():
    # A fresh interpreter: this test process has Playwright loaded already.
    check = "import sys, envs.actions, envs.rendering; print([m for m in sys.modules if m.startswith('playwright')])"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
