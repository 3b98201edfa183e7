"""Faults a browser run meets (issue #8): each ends in a clear outcome the run can record, never a
hang or an opaque Playwright error. One test per fault; real headless Chromium on local pages."""
from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from websockets.asyncio.server import serve

from bench.faults import rss_mb
from envs import executor
from envs.browser import BrowserConfig, BrowserCrashed, BrowserSession
from envs.env import BrowserEnv
from envs.rendering import render_text
from envs.tasks import UrlTask
from envs.tokens import count_tokens
from tests.pages.big_page import make_big_page
from tests.pages.page_server import PageServer

PAGES = Path(__file__).parent.parent / "pages"


@pytest.fixture(scope="module")
async def session() -> BrowserSession:
    browser = BrowserSession(BrowserConfig(action_timeout_ms=2000, navigation_timeout_ms=2000))
    await browser.start()
    yield browser
    await browser.close()


def _id_of(obs, name: str) -> str:
    return next(e.id for e in obs.elements if e.name == name and e.id)


async def _start(env: BrowserEnv, url: str):
    obs, _ = await env.reset(UrlTask(id="fault", start_url=url, goal="cope"))
    return obs


async def test_dialogs_are_answered_and_reported(session):
    env = BrowserEnv(session)
    obs = await _start(env, str(PAGES / "faults_dialogs.html"))

    started = time.perf_counter()
    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'Confirm')}')")
    assert time.perf_counter() - started < 5  # a dialog never hangs the action
    assert obs.title == "confirm true"  # accepted: what the click asked for
    assert [e["details"]["type"] for e in info["page_events"]] == ["confirm"]
    assert info["page_events"][0]["details"]["message"] == "Delete the draft?"
    assert "confirm dialog 'Delete the draft?'" in obs.last_action_error
    assert "accepted" in obs.last_action_error
    assert info["action_error"] is None  # the click itself did not fail (adaptive: no surprise)

    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'Prompt')}')")
    assert obs.title == "prompt Ada"  # a prompt gets its default value
    assert "default value 'Ada'" in obs.last_action_error

    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'Two alerts')}')")
    assert obs.title == "two alerts done"
    assert [e["details"]["message"] for e in info["page_events"]] == ["one", "two"]

    obs, _, _, _, info = await env.step("noop(0)")  # a quiet step reports nothing
    assert obs.last_action_error is None and info["page_events"] == []


async def test_popups_become_tabs_the_agent_can_switch_and_close(session):
    env = BrowserEnv(session)
    obs = await _start(env, str(PAGES / "faults_popups.html"))

    obs, *_ = await env.step(f"click('{_id_of(obs, 'Open window')}')")
    assert [t.title for t in obs.tabs] == ["Opener", "Popup child"]
    assert obs.tabs[1].active and obs.title == "Popup child" and obs.last_action_error is None

    obs, *_ = await env.step("tab_focus(0)")
    assert obs.title == "Opener" and obs.tabs[0].active
    obs, *_ = await env.step(f"click('{_id_of(obs, 'Open in new tab')}')")  # target=_blank
    assert len(obs.tabs) == 3 and obs.tabs[2].active and obs.title == "Popup child"

    obs, *_ = await env.step("tab_close()")  # the focus goes to the neighbouring tab
    assert [t.title for t in obs.tabs] == ["Opener", "Popup child"] and obs.tabs[1].active
    # A window that closes itself hands the focus to a tab still open.
    obs, *_ = await env.step(f"click('{_id_of(obs, 'Close this window')}')")
    assert [t.title for t in obs.tabs] == ["Opener"] and obs.title == "Opener" and obs.tabs[0].active


async def test_downloads_are_reported_and_saved_only_when_on(session, tmp_path):
    env = BrowserEnv(session)
    session.config.downloads_dir = str(tmp_path / "downloads")
    try:
        obs = await _start(env, str(PAGES / "faults_files.html"))
        obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'Download notes')}')")
        [event] = info["page_events"]
        assert event["kind"] == "download" and event["details"]["file_name"] == "notes.txt"
        assert "downloads are off, so nothing was saved" in obs.last_action_error
        assert not (tmp_path / "downloads").exists()

        session.config.accept_downloads = True  # what --allow-downloads sets
        obs = await _start(env, str(PAGES / "faults_files.html"))
        obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'Download notes')}')")
        [event] = info["page_events"]
        saved = tmp_path / "downloads" / "notes.txt"
        assert event["details"]["path"] == str(saved) and f"saved at {saved}" in obs.last_action_error
        await env.session.close_context()  # waits for the file to be written
        assert saved.read_text() == "hello from the page"
    finally:
        session.config.accept_downloads, session.config.downloads_dir = False, None


async def test_file_choosers_do_not_hang_and_upload_file_fills_them(session, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    photo = uploads / "photo.png"
    photo.write_bytes(b"not really a png")
    env = BrowserEnv(session, upload_dirs=[uploads])
    obs = await _start(env, str(PAGES / "faults_files.html"))

    started = time.perf_counter()
    obs, _, _, _, info = await env.step(f"click('{_id_of(obs, 'Choose a photo')}')")
    assert time.perf_counter() - started < 5
    assert [e["kind"] for e in info["page_events"]] == ["file_chooser"]
    assert "file chooser" in obs.last_action_error and "upload_file" in obs.last_action_error

    # BrowserGym's upload_file takes the button that opens the chooser, or the file input itself.
    obs, _, _, _, info = await env.step(f"upload_file('{_id_of(obs, 'Choose a photo')}', '{photo}')")
    assert obs.last_action_error is None and info["page_events"] == []
    assert any(e.name == "chosen: photo.png" for e in obs.elements)
    obs, *_ = await env.step(f"upload_file('{_id_of(obs, 'Attachment')}', '{photo}')")
    assert obs.last_action_error is None
    obs, *_ = await env.step(f"upload_file('{_id_of(obs, 'Attachment')}', '{uploads / 'missing.png'}')")
    assert "there is no file" in obs.last_action_error and "missing.png" in obs.last_action_error


async def test_upload_file_sends_only_files_under_the_users_upload_folders(session, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    for env, path in [(BrowserEnv(session), secret),  # no folder given: no uploads at all
                      (BrowserEnv(session, upload_dirs=[uploads]), secret),
                      (BrowserEnv(session, upload_dirs=[uploads]), uploads / ".." / "id_rsa")]:
        obs = await _start(env, str(PAGES / "faults_files.html"))
        obs, *_ = await env.step(f"upload_file('{_id_of(obs, 'Choose a photo')}', '{path}')")
        assert "outside the folders uploads may come from" in obs.last_action_error
        assert "--upload-dir" in obs.last_action_error
        assert not any(e.name.startswith("chosen:") for e in obs.elements if e.name)


class StallingServer:
    """Pages that never finish: /hang never answers, /partial sends half a page and stops, /stalled-image
    is a page whose image never ends. Everything is let go when the test ends."""

    def __init__(self) -> None:
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/hang":
                    release.wait(60)
                    return
                if self.path == "/partial":
                    self._head("text/html")
                    self.wfile.write(b"<title>Partial</title><p>the first half</p>" + b" " * 4096)
                    self.wfile.flush()
                    release.wait(60)
                    return
                if self.path == "/never.png":
                    self._head("image/png")
                    self.wfile.write(b"\x89PNG")
                    self.wfile.flush()
                    release.wait(60)
                    return
                body = {"/stalled-image": b'<title>Stalled</title><img src="/never.png"><p>text is here</p>'}.get(
                    self.path, b'<title>Start</title><a href="/hang">slow link</a><a href="/partial">half page</a>')
                self._head("text/html")
                self.wfile.write(body)

            def _head(self, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalling() -> Iterator[StallingServer]:
    server = StallingServer()
    yield server
    server.close()


async def test_a_page_that_never_finishes_loading_does_not_hang_the_step(session, stalling, monkeypatch):
    monkeypatch.setattr(executor, "SETTLE_TIMEOUT_MS", 1000)  # how long a step waits for a page after acting
    env = BrowserEnv(session)  # navigation_timeout_ms=2000, action_timeout_ms=2000
    obs = await _start(env, f"{stalling.url}/")

    for action, limit in [(f"goto('{stalling.url}/hang')", 2000), (f"click('{_id_of(obs, 'slow link')}')", 2000)]:
        started = time.perf_counter()
        obs, *_ = await env.step(action)
        assert time.perf_counter() - started < limit / 1000 + 3, action
        assert f"did not finish loading within {limit} ms" in obs.last_action_error, action
        assert obs.title == "Start" and obs.url == f"{stalling.url}/"  # the observation is still made

    obs, *_ = await env.step(f"click('{_id_of(obs, 'half page')}')")
    assert "did not finish loading" in obs.last_action_error
    assert obs.title == "Partial" and any(e.name == "the first half" for e in obs.elements)

    obs, *_ = await env.step(f"goto('{stalling.url}/stalled-image')")
    assert "the page is shown but did not finish loading" in obs.last_action_error
    assert any(e.name == "text is here" for e in obs.elements)


def _kill(pid: int) -> None:
    process = psutil.Process(pid)  # taken before the kill: Playwright reaps the process at once
    process.kill()
    process.wait(5)


def _browser_processes() -> set[int]:
    """Chromium main processes started by this test process (renderers and helpers have --type=)."""
    return {p.pid for p in psutil.Process().children(recursive=True)
            if p.name().startswith("chrom") and not any(a.startswith("--type=") for a in p.cmdline())}


async def test_a_start_page_with_an_image_that_never_loads_is_observed_as_it_is():
    # The document is there; only its image's server never answers. reset() waits the navigation
    # timeout for the load event, then stops loading and observes the page.
    server = PageServer({"/": "<title>Gallery</title><h1>Pictures</h1><img src='/hang' alt='never'>"},
                        hanging={"/hang"})
    env = BrowserEnv(BrowserConfig(navigation_timeout_ms=1500))
    try:
        started = time.perf_counter()
        obs = await _start(env, f"{server.url}/")
        assert time.perf_counter() - started < 15
        assert obs.title == "Gallery" and "Pictures" in render_text(obs)
        assert obs.last_action_error is None
    finally:
        server.release.set()
        await env.close()
        server.close()


async def test_a_kill_playwright_has_not_noticed_yet_is_still_a_crash(monkeypatch):
    # On a busy machine Playwright learns of a killed browser late: until then it still reports it
    # connected. The env asks the browser itself, so the crash is handled the same, and closing the env
    # does not fail on the dead browser's context.
    monkeypatch.setattr(BrowserSession, "connected", property(lambda session: session._browser is not None))
    server = PageServer({"/": "<title>Home</title><a href='/second'>next</a>", "/second": "<title>Second</title>"})
    before = _browser_processes()
    env = BrowserEnv(BrowserConfig(action_timeout_ms=2000, navigation_timeout_ms=2000))
    try:
        obs = await _start(env, f"{server.url}/")
        obs, *_ = await env.step(f"click('{_id_of(obs, 'next')}')")
        [pid] = _browser_processes() - before
        _kill(pid)
        obs, *_ = await env.step("go_back()")
        assert obs.last_action_error.startswith(f"the browser crashed and was restarted at {server.url}/second")
        assert obs.title == "Second"
        [new_pid] = _browser_processes() - before
        _kill(new_pid)
        obs = await env.observe()
        assert obs.last_action_error.startswith(f"the browser crashed and was restarted at {server.url}/second")
        [last_pid] = _browser_processes() - before
        _kill(last_pid)
    finally:
        await env.close()  # its context died with the browser: closing it is not an error
        server.close()


async def test_a_killed_browser_is_restarted_at_the_last_url(tmp_path):
    server = PageServer({"/": "<title>Home</title><a href='/second'>next</a>", "/second": "<title>Second</title>"})
    before = _browser_processes()
    env = BrowserEnv(BrowserConfig(action_timeout_ms=2000, navigation_timeout_ms=2000))
    try:
        obs = await _start(env, f"{server.url}/")
        obs, *_ = await env.step(f"click('{_id_of(obs, 'next')}')")
        [pid] = _browser_processes() - before
        _kill(pid)

        obs, _, _, _, info = await env.step("go_back()")
        assert obs.last_action_error.startswith(f"the browser crashed and was restarted at {server.url}/second")
        assert "go_back() may not have run" in obs.last_action_error and "Cookies" in obs.last_action_error
        assert obs.url == f"{server.url}/second" and obs.title == "Second"
        [new_pid] = _browser_processes() - before
        assert new_pid != pid

        # The new context is guarded like the old one.
        obs, _, _, _, info = await env.step("goto('http://127.0.0.1:9/elsewhere')")
        assert "was blocked" in obs.last_action_error and info["blocked_urls"] == ["http://127.0.0.1:9/elsewhere"]

        # Killed between steps, observe() restarts it too.
        _kill(new_pid)
        obs = await env.observe()
        assert obs.last_action_error.startswith(f"the browser crashed and was restarted at {server.url}/second")
        assert obs.title == "Second"

        # When no browser starts any more, one clear exception for the run to record as its stop reason.
        not_a_browser = tmp_path / "chromium"
        not_a_browser.write_text("#!/bin/sh\nexit 1\n")
        not_a_browser.chmod(0o755)
        env.session.config.chromium = str(not_a_browser)
        [last_pid] = _browser_processes() - before
        _kill(last_pid)
        with pytest.raises(BrowserCrashed, match="the browser crashed and could not be started again"):
            await env.step("noop(0)")
    finally:
        await env.close()
        server.close()


async def _settled_rss_mb(session: BrowserSession) -> float:
    """Resident memory of this process and everything it started (Playwright's driver, Chromium), once
    the page's garbage is collected: V8 collects lazily, so RSS without it drifts up tens of MB and
    back, which says nothing about memory the observations keep."""
    cdp = await session.context.new_cdp_session(session.page)
    await cdp.send("HeapProfiler.collectGarbage")
    await cdp.detach()
    gc.collect()
    return rss_mb()


async def test_a_20000_element_page_keeps_the_budget_and_bounded_memory(session, tmp_path):
    page = tmp_path / "big.html"
    page.write_text(make_big_page(20_000))
    env = BrowserEnv(session)
    session.config.navigation_timeout_ms = 30_000  # loading 5 MB of HTML takes a few seconds here
    try:
        obs = await _start(env, str(page))  # the first observation
    finally:
        session.config.navigation_timeout_ms = 2000
    assert len(obs.ids()) >= 20_000
    text = render_text(obs, env.options.token_budget)
    assert count_tokens(text) <= env.options.token_budget and "Trimmed to fit" in text

    sizes = [await _settled_rss_mb(session)]
    for _ in range(4):
        obs = await env.observe()
        sizes.append(await _settled_rss_mb(session))
    assert len(obs.ids()) >= 20_000
    growth = max(sizes) - sizes[0]
    assert growth < 100, f"memory grew by {growth:.0f} MB over 5 observations: {[round(s) for s in sizes]}"


@pytest.fixture
async def websocket_servers() -> Iterator[tuple[int, int, list[str]]]:
    connections: list[str] = []

    async def echo(socket) -> None:
        connections.append(str(socket.local_address[1]))
        async for message in socket:
            await socket.send(f"echo:{message}")

    async with serve(echo, "127.0.0.1", 0) as allowed, serve(echo, "127.0.0.1", 0) as other:
        yield allowed.sockets[0].getsockname()[1], other.sockets[0].getsockname()[1], connections


async def test_the_guard_blocks_browser_pages_and_other_origins_websockets(session, websocket_servers):
    allowed_port, other_port, connections = websocket_servers
    server = PageServer({"/": "<title>Home</title>"})
    env = BrowserEnv(session, allow_domains=[f"http://127.0.0.1:{allowed_port}"])
    try:
        await _start(env, f"{server.url}/")
        for url in ["chrome://version", f"view-source:{server.url}/", "javascript:void(0)"]:
            obs, _, _, _, info = await env.step(f"goto('{url}')")
            assert obs.url == f"{server.url}/" and info["blocked_urls"] == [url]
            assert "was blocked" in obs.last_action_error

        talk = """port => new Promise(done => {
            const socket = new WebSocket(`ws://127.0.0.1:${port}/`);
            socket.onopen = () => socket.send('hi');
            socket.onmessage = event => done(event.data);
            socket.onclose = event => done(`closed ${event.code}`);
        })"""
        assert await session.page.evaluate(talk, allowed_port) == "echo:hi"
        assert await session.page.evaluate(talk, other_port) == "closed 1008"
        assert connections == [str(allowed_port)]  # nothing reached the other server
        last_blocked = env.guard.blocked[-1]
        assert (last_blocked.url, last_blocked.resource_type) == (f"ws://127.0.0.1:{other_port}/", "websocket")
    finally:
        server.close()


async def test_a_file_task_may_still_open_browser_pages(session):
    env = BrowserEnv(session)
    await _start(env, str(PAGES / "faults_dialogs.html"))
    obs, _, _, _, info = await env.step("goto('chrome://version')")
    assert info["blocked_urls"] == []  # the guard let it through (the headless shell has no such page to show)
    assert obs.url.startswith("chrome://version") or "ERR_INVALID_URL" in (obs.last_action_error or "")


async def test_a_page_that_closes_its_last_tab_leaves_a_blank_tab_and_says_so(session):
    env = BrowserEnv(session)
    obs = await _start(env, str(PAGES / "faults_popups.html"))
    obs, *_ = await env.step(f"click('{_id_of(obs, 'Open window')}')")
    await env.step("tab_focus(0)")
    obs, *_ = await env.step("tab_close()")  # only the popup is left, and a script opened it
    assert [t.title for t in obs.tabs] == ["Popup child"]
    obs, *_ = await env.step(f"click('{_id_of(obs, 'Close this window')}')")
    assert obs.url == "about:blank" and len(obs.tabs) == 1
    assert "closed its last tab; a blank tab was opened" in obs.last_action_error
    obs, *_ = await env.step("noop(0)")  # and the run goes on from there
    assert obs.url == "about:blank" and obs.last_action_error is None
