"""A page that opens dialogs without end (issue #18): the storm is told apart from a page's few dialogs,
its tab is closed unanswered, the action ends with that error, and the run goes on; never a hang."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from envs.browser import STORM_DIALOGS, BrowserConfig, BrowserSession
from envs.env import BrowserEnv
from envs.tasks import UrlTask

PAGE = (Path(__file__).parent.parent / "pages" / "faults_dialog_storm.html").resolve()


@pytest.fixture(scope="module")
async def session() -> BrowserSession:
    browser = BrowserSession(BrowserConfig(action_timeout_ms=2000, navigation_timeout_ms=2000))
    await browser.start()
    yield browser
    await browser.close()


async def start(session: BrowserSession) -> tuple[BrowserEnv, dict[str, str]]:
    env = BrowserEnv(session)
    obs, _ = await env.reset(UrlTask(id="storm", start_url=PAGE.as_uri(), goal="cope"))
    return env, {e.name: e.id for e in obs.elements if e.id}


@pytest.mark.parametrize("button", ["Alert loop", "Alert timer"])
async def test_a_dialog_storm_closes_its_tab_and_the_run_goes_on(session: BrowserSession, button: str) -> None:
    env, ids = await start(session)
    started = time.perf_counter()
    obs, _, done, _, info = await env.step(f"click('{ids[button]}')")
    events = info["page_events"]
    if button == "Alert timer":  # the click returns after the first alert; the storm follows, between steps
        obs, _, done, _, info = await env.step("noop(500)")
        events += info["page_events"]
    assert time.perf_counter() - started < 10  # the alert loop hung every later action for good before
    kinds = [event["kind"] for event in events]
    assert kinds.count("dialog_storm") == 1 and kinds.count("dialog") < STORM_DIALOGS
    assert "opened dialogs without end" in obs.last_action_error and "was closed" in obs.last_action_error
    assert not done and PAGE.as_uri() not in [tab.url for tab in obs.tabs]  # the storming tab is gone

    obs, *_ = await env.step(f"goto('{PAGE.as_uri()}')")  # the agent can carry on, even back there
    assert obs.title == "Dialog storm" and obs.last_action_error is None


async def test_alerts_a_person_could_follow_are_answered_and_told_once_with_their_count(
        session: BrowserSession) -> None:
    env, ids = await start(session)
    await env.step(f"click('{ids['Slow alerts']}')")
    obs, _, _, _, info = await env.step("noop(2000)")
    kinds = {event["kind"] for event in info["page_events"]}
    assert kinds == {"dialog"} and len(info["page_events"]) >= 4  # answered, not taken for a storm
    assert obs.title == "Dialog storm"
    assert obs.last_action_error.count("alert dialog 'slow'") == 1  # said once ...
    assert f"({len(info['page_events'])} times)" in obs.last_action_error  # ... with how often
