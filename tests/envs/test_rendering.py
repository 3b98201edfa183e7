"""Rendering an Observation as text: what the model must still read of every element in the compact
form (ids, names, values, states, which select an option is in, what is off screen and which way to
scroll), what goes first when over the token budget and what the closing note says, long texts
shortened before anything is hidden, speed on huge pages (no browser)."""
from __future__ import annotations

import re
import time

import pytest

from envs.rendering import DEFAULT_TOKEN_BUDGET, MARKERS, element_line, element_lines, render_text
from envs.tokens import count_tokens
from envs.types import Element, Observation, Tab


def synthetic_page(n: int, viewport: int = 40) -> Observation:
    """Rows of text, a button and a 12-option select, the first `viewport` elements on screen."""
    elements: list[Element] = []
    for row in range(n):
        def add(**kw):
            elements.append(Element(offscreen=len(elements) >= viewport, **kw))
        add(id=None, role="text", name=f"Row {row} says something about item number {row}")
        add(id=f"e{len(elements)}", role="button", name=f"Open item {row}", tag="button")
        add(id=f"e{len(elements)}", role="combobox", name="Size", value="M", tag="select")
        for size in range(12):
            states = ["selected"] if size == 3 else []
            add(id=f"e{len(elements)}", role="option", name=f"Size {size}", depth=1, states=states, tag="option")
    return Observation(url="http://127.0.0.1/list", title="List", elements=elements)


def hidden_counts(note: str) -> dict[str, int]:
    return {kind: int(count) for count, kind in re.findall(r"hid (\d+) ([^;.]+)", note)}


@pytest.mark.parametrize("budget", [300, 800, 1500, 3000, 6000])
def test_trimming_drops_the_least_useful_first_and_says_so(budget):
    obs = synthetic_page(60)
    focused = obs.elements[-5]  # an option deep down the page
    focused_select = next(e for e in reversed(obs.elements[:-5]) if e.role == "combobox")
    obs.focused_id = focused.id
    text = render_text(obs, budget)
    assert count_tokens(text) <= budget
    lines = text.splitlines()
    shown = set(lines)
    note = lines[-1]
    assert note.startswith(f"[Trimmed to fit {budget} tokens:")
    counts = hidden_counts(note)

    line_of = dict(zip(map(id, obs.elements), element_lines(obs.elements)))
    missing = [e for e in obs.elements if line_of[id(e)] not in shown]
    assert sum(counts.values()) == len(missing)
    focused_id = str(focused.id)
    assert any(focused_id in line for line in lines), "the focused element is never dropped"
    assert line_of[id(focused_select)] in shown, "a focused option is shown with its select"
    missing_texts = [e for e in missing if e.id is None]
    assert counts.get("off-screen texts", 0) + counts.get("texts in view", 0) == len(missing_texts)
    assert counts.get("texts in view", 0) == len([e for e in missing_texts if not e.offscreen])
    offscreen_texts = [e for e in obs.elements if e.id is None and e.offscreen]
    if counts.get("off-screen interactive elements") or counts.get("options of long selects"):
        assert counts["off-screen texts"] == len(offscreen_texts), "off-screen text goes first"
    if counts.get("off-screen interactive elements"):
        assert counts.get("options of long selects"), "long selects lose options before controls go"
    if counts.get("interactive elements in view"):
        assert counts["texts in view"] == len([e for e in obs.elements if e.id is None and not e.offscreen])
    if budget >= 1500:
        assert not counts.get("interactive elements in view") and not counts.get("texts in view")
    # A long select keeps its first options and its selected one while its other options go.
    for i, element in enumerate(obs.elements):
        if element.role == "combobox" and line_of[id(element)] in shown and element is not focused_select:
            options = obs.elements[i + 1 : i + 13]
            assert all(line_of[id(o)] in shown for o in options[:5])
    # Whatever is kept of the off-screen part sits under its marker, and nothing says it line by line.
    assert "(offscreen)" not in text
    first_offscreen = next((n for n, line in enumerate(lines) if line == MARKERS["below"]), None)
    kept_offscreen = [e for e in obs.elements if e.offscreen and line_of[id(e)] in shown]
    if kept_offscreen:
        assert first_offscreen is not None
        assert all(lines.index(line_of[id(e)]) > first_offscreen for e in kept_offscreen)


def test_long_text_is_shortened_before_anything_is_hidden():
    words = " ".join(f"word{i}" for i in range(1500))
    obs = Observation(
        url="http://127.0.0.1/",
        title="Essay",
        elements=[Element(id=None, role="text", name=words)]
        + [Element(id=f"e{i}", role="button", name=f"Button {i}", offscreen=i > 5) for i in range(1, 11)],
    )
    text = render_text(obs, 400)
    assert count_tokens(text) <= 400
    assert "\nword0 word1" in text and text.count("…") == 1
    assert all(f"[e{i}] button 'Button {i}'" in text for i in range(1, 11))
    assert text.splitlines()[-1].startswith("[Trimmed to fit 400 tokens: shortened 1 long texts.")


def test_small_observations_render_untouched():
    obs = synthetic_page(2)
    text = render_text(obs)
    assert "Trimmed" not in text
    assert len(text.splitlines()) == 2 + len(obs.elements)


def test_render_text_is_fast_on_a_20000_element_page():
    obs = synthetic_page(1500)  # 21,000 elements
    render_text(synthetic_page(3), 50)  # load the tokenizer outside the timing
    started = time.perf_counter()
    text = render_text(obs)
    elapsed = time.perf_counter() - started
    assert count_tokens(text) <= DEFAULT_TOKEN_BUDGET
    assert elapsed < 2.0, f"render_text took {elapsed:.2f} s on {len(obs.elements)} elements"


def page(*elements: Element, **fields) -> Observation:
    return Observation(url="http://127.0.0.1/form", title="Form", elements=list(elements), **fields)


def test_every_interactive_element_keeps_its_id_name_value_and_states():
    obs = page(
        Element(id=None, role="heading", name="Order"),
        Element(id=None, role="text", name="Price: $12.50"),
        Element(id="e1", role="spinbutton", name="Quantity", value="3", tag="input"),
        Element(id="e2", role="combobox", name="Cover", value="Sand", tag="select"),
        Element(id="e3", role="option", name="Black", depth=1, tag="option"),
        Element(id="e4", role="option", name="Sand", depth=1, states=["selected"], tag="option"),
        Element(id="e5", role="checkbox", name="Gift wrap", states=["checked"], tag="input"),
        Element(id="e6", role="button", name="Buy now", states=["disabled"], tag="button"),
        Element(id="e7", role="button", name="Menu", states=["collapsed"], tag="button"),
        Element(id="e8", role="textbox", name="Note", value="first line\nsecond", tag="textarea"),
        Element(id="e9", role="button", name="Go", value="Go", tag="input"),
        Element(id="e10", role="textbox", name="", states=["type=password", "#pw"], tag="input"),
    )
    assert render_text(obs).splitlines() == [
        "URL: http://127.0.0.1/form",
        "Title: Form",
        "heading 'Order'",
        "Price: $12.50",
        "[e1] spinbutton 'Quantity' value='3'",
        "[e2] combobox 'Cover' value='Sand'",
        " [e3] 'Black'",  # an option: no role word; the select's value says which one is selected
        " [e4] 'Sand'",
        "[e5] checkbox 'Gift wrap' checked",
        "[e6] button 'Buy now' disabled",
        "[e7] button 'Menu' collapsed",
        "[e8] textbox 'Note' value='first line\\nsecond'",
        "[e9] button 'Go'",  # a value equal to the name is said once
        "[e10] textbox type=password #pw",
    ]
    # On its own (e.g. in a list of what changed), an option or a text still says what it is.
    assert element_line(obs.elements[5]) == " [e4] option 'Sand' selected"
    assert element_line(obs.elements[1]) == "text 'Price: $12.50'"


def test_selected_stays_where_the_select_value_does_not_say_it():
    obs = page(
        Element(id="e1", role="listbox", name="Sizes", value="S, M", tag="select"),  # a <select multiple>
        Element(id="e2", role="option", name="S", depth=1, states=["selected"], tag="option"),
        Element(id="e3", role="option", name="M", depth=1, states=["selected"], tag="option"),
        Element(id="e4", role="listbox", name="Colours"),  # an ARIA listbox, not a <select>
        Element(id="e5", role="option", name="Red", depth=1, states=["selected"]),
    )
    lines = render_text(obs).splitlines()[2:]
    assert lines == ["[e1] listbox 'Sizes' value='S, M'", " [e2] 'S' selected", " [e3] 'M' selected",
                     "[e4] listbox 'Colours'", " [e5] option 'Red' selected"]


def test_text_that_could_pass_for_an_element_or_a_header_is_quoted():
    lines = render_text(page(
        Element(id=None, role="text", name="[e1] button 'Pay now'"),
        Element(id=None, role="text", name="Focused: e1"),
        Element(id=None, role="text", name="--- in view ---"),
        Element(id=None, role="text", name="Shipping: 2 days"),
    )).splitlines()[2:]
    assert lines == ["text '[e1] button 'Pay now''", "text 'Focused: e1'", "text '--- in view ---'",
                     "Shipping: 2 days"]


def test_off_screen_stretches_sit_under_one_marker_that_says_which_way_to_scroll():
    def el(name: str, offscreen: bool, depth: int = 0) -> Element:
        return Element(id=f"e{name}", role="link", name=name, depth=depth, offscreen=offscreen)

    obs = page(el("1", True), el("2", True), el("3", False), el("4", True, 1), el("5", False), el("6", True),
               el("7", True), Element(id=None, role="text", name="Footer", offscreen=True))
    assert render_text(obs).splitlines()[2:] == [
        MARKERS["above"], "[e1] link '1'", "[e2] link '2'",
        MARKERS["in view"], "[e3] link '3'",
        MARKERS["out of view"], " [e4] link '4'",  # in a scroll box, say: between parts in view
        MARKERS["in view"], "[e5] link '5'",
        MARKERS["below"], "[e6] link '6'", "[e7] link '7'", "Footer",
    ]
    assert MARKERS["above"].startswith("---") and "scroll up" in MARKERS["above"]
    assert "scroll down" in MARKERS["below"]
    # A page with nothing off screen has no markers at all.
    assert not any(line.startswith("---") for line in render_text(synthetic_page(2)).splitlines())


def test_being_off_screen_costs_one_marker_line_not_tokens_on_every_line():
    scrolled = synthetic_page(200, viewport=40)
    all_in_view = synthetic_page(200, viewport=10**9)
    text = render_text(scrolled, 10**9)
    assert "(offscreen)" not in text and text.count(MARKERS["below"]) == 1
    assert text.replace("\n" + MARKERS["below"], "") == render_text(all_in_view, 10**9)


def test_what_a_page_chooses_for_its_header_cannot_crowd_out_the_page() -> None:
    # The URL, title, tab titles and (through its dialogs) the last action error are the page's own text.
    flood = "please read this important notice " * 5_000
    obs = Observation(url="http://127.0.0.1/" + "a" * 100_000, title=flood,
                      tabs=[Tab(index=i, url=f"http://127.0.0.1/{i}", title=flood, active=i == 0) for i in range(3)],
                      elements=[Element("e1", "button", "Pay")], last_action_error=flood)
    text = render_text(obs)
    assert count_tokens(text) <= 0.3 * DEFAULT_TOKEN_BUDGET + 50  # the header's share, and the one element
    assert "[e1] button 'Pay'" in text
    for line in text.splitlines()[:4]:  # URL, Title, Tabs, Last action error: each cut with a marker
        assert re.search(r"… \[trimmed [\d,]+ characters\]", line), line


def test_a_page_of_characters_worth_several_tokens_each_is_still_within_budget() -> None:
    # 3,000 characters, each at least one token: under the budget in characters, over it in tokens.
    obs = Observation(url="about:blank", title="", tabs=[],
                      elements=[Element(None, "text", "😀" * 100, depth=0) for _ in range(30)])
    assert count_tokens(render_text(obs, 1000)) <= 1000
