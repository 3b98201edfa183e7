"""The observation: ids on every interactive element, states and values, what is hidden or off
screen, frames, stable ids, real pages' text within the token budget, and pruned HTML. Real headless
Chromium, local pages."""
from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path

import miniwob
import pytest

import envs
from envs.browser import BrowserSession
from envs.ids import ID_PATTERN, locate
from envs.observation import ObservationOptions, observe, prune_html
from envs.rendering import render_text
from envs.tokens import count_tokens
from envs.types import Element, Observation
from tests.pages.big_page import make_big_page

PAGES = Path(__file__).resolve().parents[1] / "pages"
DEMO = Path(envs.__file__).parent / "pages" / "demo.html"
MINIWOB_HTML = Path(miniwob.__file__).parent / "html" / "miniwob"
OPTIONS = ObservationOptions()


@pytest.fixture(scope="module")
async def browser_session():
    session = BrowserSession()
    await session.start()
    await session.new_context()
    yield session
    await session.close()


@pytest.fixture
async def session(browser_session: BrowserSession) -> BrowserSession:
    """The shared session, back to a single tab."""
    for extra in browser_session.pages[1:]:
        await extra.close()
    browser_session.page = browser_session.pages[0]
    return browser_session


@pytest.fixture(scope="module")
def http_port():
    handler = functools.partial(_QuietHandler, directory=str(PAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


async def open_file(session: BrowserSession, path: Path) -> None:
    await session.page.goto(path.resolve().as_uri())


def by_name(obs: Observation, name: str) -> Element:
    matches = [e for e in obs.elements if e.name == name]
    assert len(matches) == 1, f"expected one element named {name!r}, got {matches}"
    return matches[0]


# ------------------------------------------------------------------------------- ids and kinds


async def test_every_kind_of_interactive_element_gets_an_id_and_hidden_ones_do_not(session):
    await open_file(session, PAGES / "widgets.html")
    obs = await observe(session, OPTIONS)
    marked = await session.page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-expect]'), el => ({
               expect: el.dataset.expect, id: el.getAttribute('data-ft-id'), html: el.outerHTML.slice(0, 90)}))"""
    )
    assert len(marked) > 60
    for item in marked:
        if item["expect"] == "none":
            assert item["id"] is None, f"got an id but should not: {item['html']}"
            continue
        assert item["id"] is not None, f"no id for {item['html']}"
        element = obs.element(item["id"])
        assert element is not None, f"id {item['id']} not in the observation: {item['html']}"
        assert element.role == item["expect"], item["html"]
    ids = [e.id for e in obs.elements if e.id is not None]
    assert len(ids) == len(set(ids))
    assert all(ID_PATTERN.match(i) and i.startswith("e") for i in ids)
    names = {e.name for e in obs.elements}
    # Hidden text is dropped, visible text is kept as id-less nodes.
    assert "Display none" not in names and "Inside aria-hidden" not in names
    assert not any("invisible words" in e.name for e in obs.elements)
    assert "Hidden until opened" not in names  # inside a closed <details>
    assert any(e.role == "heading" and e.name == "Widgets" and e.id is None for e in obs.elements)
    assert any(e.role == "text" and e.name == "Intro paragraph with bold words inside." for e in obs.elements)
    assert any(e.role == "row" and e.name == "Pencil | $1.20" for e in obs.elements)


async def test_demo_page_shows_values_states_and_text(session):
    await open_file(session, DEMO)
    obs = await observe(session, OPTIONS)
    text = render_text(obs)
    ids = {e.name: e.id for e in obs.elements if e.id}
    expected_lines = [
        f"[{ids['Catalog']}] link 'Catalog'",
        f"[{ids['Help']}] clickable 'Help'",
        f"[{ids['Quantity']}] spinbutton 'Quantity' value='1'",
        f"[{ids['Cover']}] combobox 'Cover' value='Forest green'",
        f" [{ids['Black']}] 'Black'",  # options of a select: the select's value says which is selected
        f" [{ids['Forest green']}] 'Forest green'",
        f"[{ids['Gift wrap']}] checkbox 'Gift wrap'",
        f"[{ids['Standard (free)']}] radio 'Standard (free)' checked",
        f"[{ids['Buy now']}] button 'Buy now' disabled",
        f"[{ids['Anything we should know?']}] textbox 'Anything we should know?'",
        f"[{ids['Card message']}] textbox 'Card message' value='Happy birthday!'",
        f"[{ids['Details']}] tab 'Details' selected",
        "heading 'Notebook, A5, dotted'",
        "Price: $12.50 · 4.6 stars from 212 reviews",
        "--- below the viewport (scroll down to see) ---",
        "Fine print: returns are accepted within 30 days.",
        f"[{ids['Back to top']}] link 'Back to top'",
    ]
    lines = text.splitlines()
    for line in expected_lines:
        assert line in lines, f"{line!r} missing from:\n{text}"
    # What is off screen comes after the one marker line, and only that.
    marker = lines.index("--- below the viewport (scroll down to see) ---")
    assert lines[marker + 1:] == expected_lines[-2:]
    assert "(offscreen)" not in text
    assert lines[0] == f"URL: {DEMO.resolve().as_uri()}"
    assert lines[1] == "Title: Forethought demo: order a notebook"
    assert "Tabs:" not in text and "Trimmed" not in text


async def test_js_only_link_gets_an_id_that_clicks(session):
    await open_file(session, DEMO)
    obs = await observe(session, OPTIONS)
    help_link = by_name(obs, "Help")
    assert help_link.role == "clickable" and help_link.tag == "span"
    await (await locate(session.page, help_link.id)).click()
    obs = await observe(session, OPTIONS)
    assert any(e.name == "Help: pick a cover, then add to cart." for e in obs.elements)


async def test_hover_pointer_icons_of_miniwob_social_media_get_ids(session):
    await session.page.goto((MINIWOB_HTML / "social-media.html").as_uri())
    await session.page.wait_for_selector("#sync-task-cover")
    await session.page.evaluate("() => { core.EPISODE_MAX_TIME = 3600000; core.startEpisodeReal(); }")
    await session.page.wait_for_function("() => WOB_TASK_READY")
    obs = await observe(session, OPTIONS)
    icons = await session.page.evaluate(
        "() => Array.from(document.querySelectorAll('.controls .reply, .controls .like, .controls .more'),"
        " el => el.getAttribute('data-ft-id'))"
    )
    assert icons and all(icons), icons
    assert {".reply", ".like", ".more"} <= {s for e in obs.elements for s in e.states}  # their only clue


# --------------------------------------------------------------------------- states and stability


async def test_values_and_states_follow_the_page_and_ids_stay(session):
    await open_file(session, DEMO)
    before = await observe(session, OPTIONS)
    qty, cover, gift = by_name(before, "Quantity"), by_name(before, "Cover"), by_name(before, "Gift wrap")
    page = session.page
    await (await locate(page, qty.id)).fill("3")
    await (await locate(page, cover.id)).select_option("Sand")
    await (await locate(page, gift.id)).check()
    after = await observe(session, OPTIONS)
    assert [(e.id, e.role, e.name) for e in after.elements if e.id] == [
        (e.id, e.role, e.name) for e in before.elements if e.id
    ]
    assert after.element(qty.id).value == "3"
    assert after.element(cover.id).value == "Sand"
    assert "selected" in by_name(after, "Sand").states and "selected" not in by_name(after, "Forest green").states
    assert after.element(gift.id).states == ["checked"]


async def test_ids_survive_dom_changes_and_are_never_handed_out_twice(session):
    await open_file(session, DEMO)
    first = await observe(session, OPTIONS)
    old = {e.name: e.id for e in first.elements if e.id}
    add = old["Add to cart"]
    await session.page.evaluate(
        """() => {
            const fresh = document.createElement('button'); fresh.textContent = 'Fresh';
            document.body.prepend(fresh);
            document.querySelector('#add').remove();
            const buy = [...document.querySelectorAll('button')].find(b => b.textContent === 'Buy now');
            const copy = buy.cloneNode(true); copy.textContent = 'Copy of buy';  // carries data-ft-id along
            document.body.append(copy);
        }"""
    )
    second = await observe(session, OPTIONS)
    now = {e.name: e.id for e in second.elements if e.id}
    for name, element_id in old.items():
        if name != "Add to cart":
            assert now[name] == element_id, name
    assert "Add to cart" not in now
    number = lambda element_id: int(element_id[1:])  # noqa: E731
    highest_before = max(number(i) for i in old.values())
    assert number(now["Fresh"]) > highest_before
    assert number(now["Copy of buy"]) > highest_before and now["Copy of buy"] != now["Buy now"]
    assert add not in now.values()
    assert len(set(now.values())) == len(now)


async def test_an_id_already_in_the_dom_is_kept(session):
    await session.page.set_content(
        '<button data-ft-id="e50">Shipped with an id</button><button>Without</button>'
        '<button data-ft-id="bogus">Foreign id</button>'
    )
    obs = await observe(session, OPTIONS)
    assert by_name(obs, "Shipped with an id").id == "e50"
    assert int(by_name(obs, "Without").id[1:]) > 50
    assert ID_PATTERN.match(by_name(obs, "Foreign id").id)
    assert len(obs.ids()) == 3


# ----------------------------------------------------------------------------------- on screen


async def test_offscreen_is_marked_and_follows_scrolling(session):
    await open_file(session, PAGES / "widgets.html")
    obs = await observe(session, OPTIONS)
    assert by_name(obs, "Far below button").offscreen
    assert not by_name(obs, "Native link").offscreen
    await session.page.locator("#scroller").scroll_into_view_if_needed()
    obs = await observe(session, OPTIONS)
    # In view on the page, but scrolled away inside its own scroll box.
    assert not by_name(obs, "Top of scroller").offscreen
    assert by_name(obs, "Bottom of scroller").offscreen
    await session.page.locator("#far-button").scroll_into_view_if_needed()
    obs = await observe(session, OPTIONS)
    assert not by_name(obs, "Far below button").offscreen
    assert by_name(obs, "Native link").offscreen


async def test_focused_element_is_reported(session):
    await open_file(session, DEMO)
    await session.page.focus("#qty")
    obs = await observe(session, OPTIONS)
    assert obs.focused_id == by_name(obs, "Quantity").id
    assert f"Focused: {obs.focused_id}" in render_text(obs).splitlines()
    await session.page.evaluate("() => document.activeElement.blur()")
    obs = await observe(session, OPTIONS)
    assert obs.focused_id is None and "Focused:" not in render_text(obs)


async def test_tabs_error_screenshot_and_html(session):
    await open_file(session, DEMO)
    await session.new_tab((PAGES / "frame_inner.html").resolve().as_uri())
    options = ObservationOptions(screenshot=True, html=True)
    obs = await observe(session, options, last_action_error="TimeoutError: element e99 not found")
    assert [(t.index, t.title, t.active) for t in obs.tabs] == [
        (0, "Forethought demo: order a notebook", False),
        (1, "Inner", True),
    ]
    text = render_text(obs)
    assert f"Tabs: [0] Forethought demo: order a notebook ({DEMO.resolve().as_uri()})  *[1] Inner (" in text
    assert "Last action error: TimeoutError: element e99 not found" in text
    assert obs.screenshot is not None and obs.screenshot.startswith(b"\x89PNG\r\n\x1a\n")
    assert obs.html is not None and f'data-ft-id="{by_name(obs, "Inner button").id}"' in obs.html
    assert "<script" not in obs.html
    plain = await observe(session, OPTIONS)
    assert plain.screenshot is None and plain.html is None


# -------------------------------------------------------------------------------------- frames


async def test_frame_elements_get_prefixed_ids_that_locate_and_click(session, http_port):
    page = session.page
    await page.goto(f"http://127.0.0.1:{http_port}/frames.html")
    # A cross-origin frame too (localhost is another site than 127.0.0.1).
    await page.evaluate(
        """url => new Promise(done => {
            const frame = document.createElement('iframe');
            frame.title = 'Cross-origin frame'; frame.src = url; frame.onload = done;
            document.body.append(frame);
        })""",
        f"http://localhost:{http_port}/frame_inner.html",
    )
    obs = await observe(session, OPTIONS)
    frame_nodes = [e for e in obs.elements if e.role == "iframe"]
    assert [e.name for e in frame_nodes] == ["Inner frame", "Nesting frame", "Nested inner frame", "Cross-origin frame"]
    buttons = [e for e in obs.elements if e.name == "Inner button"]
    assert len(buttons) == 3  # the display:none frame is not there
    prefixes = {re.match(r"f\d+e", b.id).group(0) for b in buttons}
    assert len(prefixes) == 3
    for button in buttons:
        placeholder = max((i for i, e in enumerate(obs.elements[: obs.elements.index(button)]) if e.role == "iframe"))
        assert button.depth == obs.elements[placeholder].depth + 1
    assert by_name(obs, "Main button").id.startswith("e")
    assert by_name(obs, "Link after the frames").depth == 0

    for button in buttons:
        locator = await locate(page, button.id)
        await locator.click()
        assert await locator.evaluate("el => el.ownerDocument.getElementById('out').textContent") == "clicked"

    field = next(e for e in obs.elements if e.name == "Inner field" and e.id.startswith(buttons[1].id.split("e")[0]))
    await (await locate(page, field.id)).focus()
    again = await observe(session, OPTIONS)
    assert [(e.id, e.name) for e in again.elements if e.id] == [(e.id, e.name) for e in obs.elements if e.id]
    assert again.focused_id == field.id
    # The frame's document still remembers its active field, but the focus has moved on.
    await page.focus("#main-button")
    assert (await observe(session, OPTIONS)).focused_id == by_name(obs, "Main button").id


# ------------------------------------------------------------------------------------ big pages


async def test_big_page_every_interactive_element_has_a_unique_id_and_text_fits(session, tmp_path):
    big = tmp_path / "big.html"
    big.write_text(make_big_page(2000), encoding="utf-8")
    await session.page.goto(big.as_uri())
    obs = await observe(session, OPTIONS)
    ids = [e.id for e in obs.elements if e.id]
    assert len(ids) == 2000 and len(set(ids)) == 2000
    assert await session.page.evaluate("() => document.querySelectorAll('[data-ft-id]').length") == 2000
    undo_ids = await session.page.evaluate(
        "() => [...document.querySelectorAll('.tooltip button')].filter(b => b.hasAttribute('data-ft-id')).length"
    )
    assert undo_ids == 0  # buttons in hidden tooltips
    text = render_text(obs)
    assert count_tokens(text) <= OPTIONS.token_budget
    for element in obs.elements:
        if element.id and not element.offscreen:
            assert f"[{element.id}] " in text
    assert count_tokens(text) <= 0.15 * count_tokens(await session.page.content())
    note = text.splitlines()[-1]
    assert note.startswith(f"[Trimmed to fit {OPTIONS.token_budget} tokens:")
    shown = len(re.findall(r"^\s*\[(?:f\d+)?e\d+\] ", text, flags=re.M))
    hidden_interactive = int(re.search(r"hid (\d+) off-screen interactive elements", note).group(1))
    assert shown + hidden_interactive == 2000


# ------------------------------------------------------------------------------------ pruned html


def test_prune_html_keeps_what_matters():
    html = """<html><head><title>T</title><style>.a{color:red}</style><script>var x = 1;</script></head>
    <body class="layout" style="margin:0" data-tracking="abc">
      <!-- a comment -->
      <div class="wrapper"><div class="empty"></div>
        <a href="/cart" class="btn" data-ft-id="e3" onclick="go()">Cart</a>
        <input type="hidden" name="csrf" value="t0k3n">
        <input type="text" name="q" placeholder="Search" data-ft-id="e4" style="width:10px">
        <button hidden>Secret</button><p style="display: none">Invisible</p>
        <div aria-hidden="true">Decoration</div>
        <svg viewBox="0 0 10 10"><title>Logo</title><path d="M0 0L10 10"/></svg>
        <p>Some    spaced
           text</p>
      </div>
    </body></html>"""
    pruned = prune_html(html)
    for gone in ["<script", "<style", "a comment", "class=", "style=", "onclick", "data-tracking", "csrf",
                 "Secret", "Invisible", "Decoration", "<path", 'class="empty"']:
        assert gone not in pruned, gone
    for kept in ['<a data-ft-id="e3" href="/cart">Cart</a>', 'data-ft-id="e4"', 'placeholder="Search"',
                 "<title>Logo</title>", "<p>Some spaced text</p>", "<title>T</title>"]:
        assert kept in pruned, kept
    assert "<div><div>" not in pruned  # the empty div is gone


async def test_password_values_never_leave_the_page(session):
    await session.page.set_content('<input type="password" aria-label="Password"><input aria-label="User">')
    await session.page.fill('input[type=password]', 'hunter2-secret')
    await session.page.fill('input[aria-label=User]', 'emma')
    obs = await observe(session, ObservationOptions())
    password = next(e for e in obs.elements if e.name == "Password")
    assert password.value == "********"
    assert "hunter2" not in render_text(obs) and "emma" in render_text(obs)
