"""Rendering an Observation as text: what goes first when over the token budget and what the closing
note says, long texts shortened before anything is hidden, speed on huge pages (no browser)."""
from __future__ import annotations

import re
import time

import pytest

from envs.rendering import DEFAULT_TOKEN_BUDGET, element_line, render_text
from envs.tokens import count_tokens
from envs.types import Element, Observation


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

    missing = [e for e in obs.elements if element_line(e) not in shown]
    assert sum(counts.values()) == len(missing)
    assert any(focused.id in line for line in lines), "the focused element is never dropped"
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
        if element.role == "combobox" and element_line(element) in shown and element is not focused_select:
            options = obs.elements[i + 1 : i + 13]
            assert all(element_line(o) in shown for o in options[:5])


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
    assert "text 'word0 word1" in text and "…'" in text
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
