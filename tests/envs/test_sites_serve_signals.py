"""`forethought sites serve` stopped with SIGTERM (or SIGHUP) as by Ctrl-C: its servers stop and their
working folders (/tmp/forethought-<site>-*) are removed. Through the real CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from envs.sites.server import REPO_ROOT


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_serve_stopped_by_a_signal_removes_its_working_folder(signum: signal.Signals, tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the command's temporary directory, to see what it leaves there
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=str(REPO_ROOT),
               FORETHOUGHT_CACHE_DIR=os.environ.get("FORETHOUGHT_CACHE_DIR") or str(tmp_path / "cache"))
    process = subprocess.Popen([sys.executable, "-m", "agent.cli", "sites", "serve", "--site", "shop"],
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Serving"):
            line = process.stdout.readline()
            assert line, f"sites serve exited early: {lines}"
            lines.append(line)
        url = lines[0].split()[1]
        [working] = list(scratch.glob("forethought-shop-*"))
        assert (working / "shop.sqlite").is_file()

        process.send_signal(signum)
        assert process.wait(timeout=60) == 0
        assert "Stopped." in process.stdout.read()
        assert list(scratch.iterdir()) == []
        with pytest.raises(httpx.ConnectError):  # its server process is gone too
            httpx.get(url + "/")
    finally:
        process.kill()
        process.wait()
