"""Running actions in Chromium (envs/executor.py): each action's effect, failures on the page, and
failures turned into last_action_error by BrowserEnv.step."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from envs.actions import Action, format_action, parse_action
from envs.browser import BrowserConfig, BrowserSession
from envs.executor import ActionTimeoutError, ElementGoneError, execute_action

PAGES = Path(__file__).resolve().parent.parent / "pages"
WIDGETS = (PAGES / "actions_widgets.html").as_uri()
NEXT = (PAGES / "actions_next.html").as_uri()
FRAME = (PAGES / "actions_frame.html").as_uri()
ACTION_TIMEOUT_MS = 1000

# ------------------------------------------------------------------------------------ executing


@pytest_asyncio.fixture(scope="module")
async def session():
    async with BrowserSession(BrowserConfig(action_timeout_ms=ACTION_TIMEOUT_MS)) as browser:
        await browser.new_context()
        yield browser


@pytest_asyncio.fixture
async def page(session):
    """The widget page, freshly loaded, in the session's only tab."""
    if len(session.pages) > 1 or session.page is None:
        await session.new_context()
    await session.page.goto(WIDGETS)
    return session.page


async def run(session: BrowserSession, text: str) -> None:
    await execute_action(session, parse_action(text))


async def test_click_counts_each_click(session, page):
    await run(session, "click('e1')")
    await run(session, "click [1]")
    assert await page.get_attribute("#counter", "data-clicks") == "2"


async def test_click_and_fill_are_cheap(session, page):
    await run(session, "click('e1')")  # warm up
    started = time.perf_counter()
    for _ in range(5):
        await run(session, "click('e1')")
        await run(session, "fill('e2', 'abc')")
    per_action = (time.perf_counter() - started) / 10
    # ~50-80 ms on an idle machine; the bound only catches a hidden wait (a settle timeout, a sleep).
    assert per_action < 1.0, f"{per_action * 1000:.0f} ms per click/fill"


async def test_fill_replaces_the_text(session, page):
    await page.fill("#name", "old")
    await run(session, "fill('e2', 'Ada Lovelace')")
    assert await page.input_value("#name") == "Ada Lovelace"


async def test_fill_works_on_contenteditable(session, page):
    await run(session, "fill('e6', 'new text')")
    assert await page.inner_text("#editor") == "new text"


async def test_webarena_type_submits_with_enter_only_when_asked(session, page):
    await run(session, "type [18] [laptops] [0]")
    assert await page.get_attribute("body", "data-submitted") is None
    await run(session, "type [18] [blue laptops] [1]")
    assert await page.get_attribute("body", "data-submitted") == "blue laptops"


async def test_select_option_by_label_or_value(session, page):
    await run(session, "select_option('e3', 'France')")
    assert await page.input_value("#country") == "fr"
    await run(session, "select_option('e3', 'nl')")
    assert await page.input_value("#country") == "nl"
    await run(session, "select_option('e4', ['Cheese', 'olives'])")
    chosen = await page.eval_on_selector("#toppings", "s => [...s.selectedOptions].map(o => o.value)")
    assert chosen == ["cheese", "olives"]


async def test_an_option_of_a_drop_down_list_is_selected_in_its_list_when_clicked_or_chosen(session, page):
    # The observation lists each option under its select with an id of its own, and models aim at it:
    # Chromium does not lay out a closed list's options, so acting on one would time out as not visible.
    await page.evaluate("""() => {
        document.querySelector('#country option[value=fr]').dataset.ftId = 'e90';
        document.querySelector('#country option[value=nl]').dataset.ftId = 'e91';
    }""")
    started = time.perf_counter()
    await run(session, "click('e90')")
    assert await page.input_value("#country") == "fr"
    await run(session, "select_option('e91', 'option')")  # the prompt's placeholder value, copied
    assert await page.input_value("#country") == "nl"
    await run(session, "dblclick('e90')")
    assert await page.input_value("#country") == "fr"
    assert time.perf_counter() - started < ACTION_TIMEOUT_MS / 1000  # none waited for the option to show


async def test_click_toggles_a_checkbox(session, page):
    await run(session, "click('e5')")
    assert await page.is_checked("#agree")
    await run(session, "click('e5')")
    assert not await page.is_checked("#agree")


async def test_dblclick(session, page):
    await run(session, "dblclick('e7')")
    assert await page.get_attribute("#double", "data-dblclicks") == "1"


async def test_hover(session, page):
    await run(session, "hover [8]")
    assert await page.get_attribute("body", "data-hovered") == "yes"
    assert await page.eval_on_selector("#hover-target", "e => e.matches(':hover')")


async def test_press_keys_on_an_element(session, page):
    await page.eval_on_selector("#keys", "i => { i.value = 'some text'; }")
    await run(session, "press('e9', 'Control+a')")  # select all, then delete it
    await run(session, "press [9] [Backspace]")
    assert await page.get_attribute("#keys", "data-log") == "Control+Control Control+a Backspace "
    assert await page.input_value("#keys") == ""


async def test_webarena_press_goes_to_the_focused_element(session, page):
    await run(session, "focus('e20')")
    assert await page.get_attribute("body", "data-focused") == "yes"
    await run(session, "press [x]")
    await run(session, "keyboard_press('y')")
    assert await page.input_value("#focus-me") == "xy"


async def test_clear(session, page):
    await run(session, "clear('e19')")
    assert await page.input_value("#prefilled") == ""


async def test_scroll_by_pixels_and_by_viewport(session, page):
    await run(session, "scroll(0, 300)")
    assert await page.evaluate("scrollY") == 300
    await run(session, "scroll [down]")
    assert await page.evaluate("scrollY") == 300 + page.viewport_size["height"]
    await run(session, "scroll [up]")
    assert await page.evaluate("scrollY") == 300
    await run(session, "scroll(250, 0)")
    assert await page.evaluate("scrollX") == 250


async def test_drag_and_drop(session, page):
    await run(session, "drag_and_drop('e16', 'e17')")
    assert await page.inner_text("#drop-target") == "moved"


async def test_upload_files(session, page, tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("a")
    second.write_text("b")
    await run(session, format_action(Action("upload_file", ("e15", [str(first), str(second)]))))
    assert await page.eval_on_selector("#upload", "i => [...i.files].map(f => f.name)") == ["a.txt", "b.txt"]


async def test_goto_back_and_forward(session, page):
    await run(session, f"goto [{NEXT}]")
    assert await page.title() == "Next page"
    await run(session, "go_back")
    assert page.url == WIDGETS
    await run(session, "go_forward()")
    assert page.url == NEXT
    await run(session, "goto('./actions_widgets.html')")  # relative to the current page
    assert page.url == WIDGETS


async def test_clicking_a_link_waits_for_the_next_page(session, page):
    await run(session, "click('e13')")
    assert session.page.url == NEXT
    assert await session.page.title() == "Next page"


async def test_tabs_open_focus_and_close(session, page):
    await run(session, "new_tab()")
    assert len(session.pages) == 2 and session.page.url == "about:blank"
    await run(session, "tab_focus [0]")
    assert session.page.url == WIDGETS
    await run(session, "click('e14')")  # target=_blank: the new tab becomes the active one
    assert len(session.pages) == 3 and session.page.url == NEXT
    await run(session, "close_tab")
    assert len(session.pages) == 2
    await run(session, "tab_focus(1)")
    assert session.page.url == "about:blank"
    await run(session, "tab_close()")
    assert [p.url for p in session.pages] == [WIDGETS] and session.page.url == WIDGETS
    with pytest.raises(IndexError, match="no tab 3"):
        await run(session, "tab_focus(3)")


async def test_a_tab_opened_by_a_script_becomes_the_active_one(session, page):
    await page.evaluate(
        "() => { document.getElementById('counter').onclick = () => window.open('actions_next.html'); }"
    )
    await run(session, "click('e1')")
    assert len(session.pages) == 2 and session.page.url == NEXT
    assert await session.page.title() == "Next page"


async def test_noop_waits(session, page):
    started = time.perf_counter()
    await run(session, "noop(200)")
    assert time.perf_counter() - started >= 0.2


async def test_answers_leave_the_page_alone(session, page):
    before = await page.content()
    await run(session, "send_msg_to_user('done')")
    await run(session, "report_infeasible('cannot')")
    assert await page.content() == before and page.url == WIDGETS


async def test_iframe_elements_are_reached_through_their_frame_prefix(session, page):
    await page.goto(FRAME)
    inner = page.frame_locator("#inner")
    await inner.locator("#inner-button").wait_for()
    # observe() sets each frame's prefix; set it here so this test does not depend on it.
    await page.frames[1].evaluate("() => { window.__ftPrefix = 'f1e'; }")
    await run(session, "click('f1e1')")
    await run(session, "click('e1')")
    assert await inner.locator("#inner-button").get_attribute("data-clicks") == "1"
    assert await page.get_attribute("#outer", "data-clicks") == "1"


# --------------------------------------------------------------------------- failures on the page


async def test_a_removed_element_fails_at_once(session, page):
    await page.evaluate("() => document.getElementById('doomed').remove()")
    started = time.perf_counter()
    with pytest.raises(ElementGoneError, match="'e12' is no longer on the page"):
        await run(session, "click('e12')")
    assert time.perf_counter() - started < ACTION_TIMEOUT_MS / 1000 / 2


COVER_THE_PAGE = """() => {
    const overlay = document.createElement('div');
    overlay.id = 'overlay';
    overlay.style = 'position: fixed; inset: 0';
    document.body.append(overlay);
}"""


@pytest.mark.parametrize(
    "text, setup, reason",
    [
        ("click('e11')", None, "element is not visible"),
        ("fill('e10', 'x')", None, "element is not enabled"),
        ("click('e1')", COVER_THE_PAGE, '<div id="overlay"></div> intercepts pointer events'),
        ("select_option('e3', 'Germany')", None,
         "no option matches 'Germany'; the options are: Choose, Netherlands, France"),
    ],
    ids=["hidden", "disabled", "covered", "no-such-option"],
)
async def test_elements_that_never_become_ready_fail_within_the_action_timeout_saying_why(
    session, page, text, setup, reason
):
    if setup:
        await page.evaluate(setup)
    started = time.perf_counter()
    with pytest.raises(ActionTimeoutError) as failure:
        await run(session, text)
    elapsed = time.perf_counter() - started
    assert ACTION_TIMEOUT_MS / 1000 <= elapsed < ACTION_TIMEOUT_MS / 1000 + 2
    assert str(failure.value) == f"{format_action(parse_action(text))} failed after {ACTION_TIMEOUT_MS} ms: {reason}"
    assert isinstance(failure.value, PlaywrightTimeoutError)  # still a Playwright timeout for callers


async def test_an_unknown_key_fails(session, page):
    with pytest.raises(PlaywrightError, match="Unknown key"):
        await run(session, "press('e9', 'NoSuchKey')")


async def test_a_missing_frame_fails_at_once(session, page):
    with pytest.raises(ElementGoneError, match="'f7e1'"):
        await run(session, "click('f7e1')")


# ------------------------------------------------------------------------ through BrowserEnv.step


async def test_env_step_turns_failures_into_last_action_error_without_raising(session):
    from envs.env import BrowserEnv
    from envs.tasks import UrlTask

    env = BrowserEnv(session)  # shares this module's browser; not closed here, the fixture closes it
    try:
        obs, _ = await env.reset(UrlTask(id="actions", start_url=WIDGETS, goal="try the widgets"))
        assert obs.last_action_error is None
        # observe() keeps the ids the fixture page already carries
        assert {"e1", "e10", "e12"} <= obs.ids()

        obs, _, done, _, _ = await env.step("click('e1')")
        assert obs.last_action_error is None and not done
        assert await env.session.page.get_attribute("#counter", "data-clicks") == "1"

        obs, *_ = await env.step("clik('e1')")
        assert obs.last_action_error.startswith("unknown action 'clik'; did you mean click?")
        obs, *_ = await env.step("click('e999')")
        assert obs.last_action_error.startswith("no element 'e999' on this page; closest ids:")
        obs, *_ = await env.step("fill('e10', 'x')")
        assert "element is not enabled" in obs.last_action_error
        await env.session.page.evaluate("() => document.getElementById('doomed').remove()")
        obs, *_ = await env.step("click('e12')")  # still in the last observation, gone from the page
        assert "'e12' is no longer on the page" in obs.last_action_error

        obs, _, done, _, info = await env.step("stop [42 clicks]")
        assert obs.last_action_error is None and done and info["answer"] == "42 clicks"
    finally:
        await session.new_context()  # leave a fresh context for any test that follows
