"""The browser session: finding Chromium, contexts, tabs, tracing and HAR recording."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from envs.browser import HEADLESS_SHELL, BrowserConfig, BrowserNotFound, BrowserSession, find_chromium

PAGE = """<title>{title}</title><a href="{href}" target="_blank">open</a><p>{title}</p>"""


def test_missing_chromium_names_the_install_command(monkeypatch):
    monkeypatch.setenv("FORETHOUGHT_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(BrowserNotFound, match=r"apt-get install -y chromium"):
        find_chromium()


def test_explicit_path_wins_over_environment(monkeypatch, tmp_path):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("FORETHOUGHT_CHROMIUM", "/nonexistent/chromium")
    assert find_chromium(str(fake)) == str(fake)


def test_default_is_the_headless_shell_when_headless_else_the_system_chromium(monkeypatch):
    monkeypatch.delenv("FORETHOUGHT_CHROMIUM", raising=False)
    if not Path("/usr/bin/chromium").exists() or not Path(HEADLESS_SHELL).exists():
        pytest.skip("no system Chromium and headless shell on this machine")
    assert find_chromium() == HEADLESS_SHELL
    assert find_chromium(headless=False) == "/usr/bin/chromium"  # the shell has no window


async def test_launch_failure_is_one_clear_error(tmp_path):
    not_a_browser = tmp_path / "chromium"
    not_a_browser.write_text("#!/bin/sh\nexit 1\n")
    not_a_browser.chmod(0o755)
    with pytest.raises(BrowserNotFound, match="could not launch Chromium"):
        await BrowserSession(BrowserConfig(chromium=str(not_a_browser))).start()


async def test_tabs_open_focus_and_close(tmp_path):
    second = tmp_path / "second.html"
    second.write_text(PAGE.format(title="Second", href="#"))
    first = tmp_path / "first.html"
    first.write_text(PAGE.format(title="First", href=second.as_uri()))
    async with BrowserSession() as session:
        await session.new_context()
        await session.page.goto(first.as_uri())
        # A link with target=_blank opens a tab that becomes the active one, as it would for a user.
        async with session.context.expect_page() as popup:
            await session.page.click("a")
        await (await popup.value).wait_for_load_state()
        assert len(session.pages) == 2
        assert await session.page.title() == "Second"
        await session.focus_tab(0)
        assert await session.page.title() == "First"
        with pytest.raises(IndexError, match="there are 2 tabs"):
            await session.focus_tab(5)
        await session.close_tab()
        assert [await p.title() for p in session.pages] == ["Second"]
        await session.close_tab()  # the last tab is replaced by a blank one, never left empty
        assert len(session.pages) == 1 and session.page.url == "about:blank"


async def test_each_context_starts_clean(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<title>p</title>")
    async with BrowserSession() as session:
        await session.new_context()
        await session.page.goto(page.as_uri())
        await session.new_tab(page.as_uri())
        await session.new_context()
        assert len(session.pages) == 1 and session.page.url == "about:blank"


async def test_tracing_and_har_are_written_on_close(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<title>recorded</title><button>b</button>")
    trace, har = tmp_path / "out" / "trace.zip", tmp_path / "out" / "network.har"
    async with BrowserSession(BrowserConfig(trace_path=str(trace), har_path=str(har))) as session:
        await session.new_context()
        await session.page.goto(page.as_uri())
        await session.page.click("button")
    assert zipfile.is_zipfile(trace)
    assert any(name.endswith(".trace") for name in zipfile.ZipFile(trace).namelist())
    assert "log" in json.loads(har.read_text())
