"""`forethought observe` on what a new user types (issue #17): a missing page, relative or absolute, a
MiniWoB++ typo, a server that is not running, `--headed` without a display. Each is one line, exit 2."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli.main import main
from tests.agent.cli.test_user_errors import refused


def test_a_missing_page_is_named_as_a_missing_file_relative_or_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert refused(["observe", "site/nope.html"], capsys).startswith("no such file: site/nope.html")
    assert refused(["observe", str(tmp_path / "nope.html")], capsys) == f"no such file: {tmp_path / 'nope.html'}"


def test_a_miniwob_typo_names_the_tasks_it_may_mean(capsys: pytest.CaptureFixture[str]) -> None:
    message = refused(["observe", "miniwob:click-chekboxes"], capsys)
    assert message.startswith("unknown MiniWoB++ task 'click-chekboxes'; did you mean click-checkboxes")


def test_a_server_that_is_not_running_is_named_with_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = refused(["observe", f"http://127.0.0.1:{port}/"], capsys)
    assert message.startswith(f"could not open http://127.0.0.1:{port}/: ") and "net::ERR_" in message
    assert message.endswith("check the URL and that its server is running")


def test_headed_without_a_display_says_so_rather_than_to_install_chromium(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    message = refused(["observe", "bundled:demo", "--headed"], capsys)
    assert message.startswith("--headed needs a display") and "install" not in message


def test_a_reader_that_stops_early_ends_observe_quietly() -> None:
    """`forethought observe URL | head -1`: the pipe closes while the page is still being written."""
    command = [sys.executable, "-m", "agent.cli", "observe", "bundled:demo"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as observe:
        assert observe.stdout is not None and observe.stderr is not None
        observe.stdout.readline()
        observe.stdout.close()  # as head does once it has its line
        err = observe.stderr.read().decode()
    assert observe.returncode == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("how", ["--debug", "FORETHOUGHT_DEBUG=1"])
def test_debug_shows_the_traceback_behind_the_one_line(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["observe", str(tmp_path / "nope.html")]
    if how == "--debug":
        argv.append("--debug")
    else:
        monkeypatch.setenv("FORETHOUGHT_DEBUG", "1")
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("Traceback (most recent call last):")
    assert err.splitlines()[-1] == f"forethought: no such file: {tmp_path / 'nope.html'}"
