"""Serving the local sites: a pristine database seeded once per site, a working copy per server,
each server in its own process on 127.0.0.1, and a fast reset to the pristine state between tasks.

A server runs in a child process so that parallel eval workers never share a GIL, an event loop or
a database: two SiteServers of the same site are fully isolated and can run side by side."""
from __future__ import annotations

import hashlib
import importlib
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

# name -> package; each package has seed.py, app.py and ACCOUNTS. Imported only when used, so a
# site that is missing or broken does not stop the others.
SITES: dict[str, str] = {
    "shop": "envs.sites.shop",
    "forum": "envs.sites.forum",
    "gitlab": "envs.sites.gitlab",
}
START_TIMEOUT_S = 30.0
REPO_ROOT = Path(__file__).resolve().parents[2]  # where the `envs` package lives, for the child's sys.path


def default_cache_dir() -> Path:
    """$FORETHOUGHT_CACHE_DIR/sites, else ~/.cache/forethought/sites (honouring $XDG_CACHE_HOME)."""
    if os.environ.get("FORETHOUGHT_CACHE_DIR"):
        return Path(os.environ["FORETHOUGHT_CACHE_DIR"]) / "sites"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "forethought" / "sites"


def load_site(name: str) -> ModuleType:
    """The site's package (envs.sites.<name>). Unknown or unavailable sites raise one clear error."""
    if name not in SITES:
        raise ValueError(f"unknown site {name!r}; the local sites are: {', '.join(SITES)}")
    try:
        return importlib.import_module(SITES[name])
    except ImportError as exc:
        raise RuntimeError(f"site {name!r} is not available: cannot import {SITES[name]} ({exc})") from exc


def site_accounts(name: str) -> list[tuple[str, str, str]]:
    """(username, password, role) of the accounts one can log in to the site with."""
    package = load_site(name)
    accounts = getattr(package, "ACCOUNTS", None)
    if accounts is None:
        accounts = getattr(importlib.import_module(f"{SITES[name]}.app"), "ACCOUNTS", None)
    if accounts is None:
        raise RuntimeError(f"site {name!r} defines no ACCOUNTS (in {SITES[name]} or its app module)")
    return list(accounts)


def schema_version(name: str) -> str:
    """A hash of the site's code: a change to its seed (or app) makes a new pristine database."""
    package_file = load_site(name).__file__
    if package_file is None:
        raise RuntimeError(f"site package {SITES[name]} has no __init__.py to find its files by")
    package_dir = Path(package_file).parent
    digest = hashlib.sha256()
    for source in sorted(package_dir.glob("*.py")) + [Path(__file__).with_name("common.py")]:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def pristine_database(name: str, cache_dir: Path | None = None) -> Path:
    """The site's seeded database in the cache, seeded on first use. Never written to afterwards."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_dir / f"{name}-{schema_version(name)}.sqlite"
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    seed_module = importlib.import_module(f"{SITES[name]}.seed")
    # Seed beside the target and rename: workers seeding at the same moment never see half a file.
    partial = cache_dir / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    try:
        seed_module.seed(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


class SiteServer:
    """One site on 127.0.0.1 with its own working database.

    `start()` copies the pristine database and serves it from a child process on `port`
    (0 = an ephemeral port); `url` is then its address. `reset()` restores the pristine data.
    Use as a context manager, or call `stop()`."""

    def __init__(self, name: str, port: int = 0, cache_dir: Path | None = None) -> None:
        load_site(name)  # fail now, with the list of sites, on a wrong name
        self.name = name
        self.requested_port = port
        self.cache_dir = cache_dir
        self.port: int | None = None
        self.pristine_path: Path | None = None
        self.db_path: Path | None = None
        self.log_path: Path | None = None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"the {self.name} server is not running: call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def accounts(self) -> list[tuple[str, str, str]]:
        return site_accounts(self.name)

    def start(self) -> SiteServer:
        if self._process is not None:
            return self
        self.pristine_path = pristine_database(self.name, self.cache_dir)
        self._workdir = Path(tempfile.mkdtemp(prefix=f"forethought-{self.name}-"))
        self.db_path = self._workdir / f"{self.name}.sqlite"
        shutil.copyfile(self.pristine_path, self.db_path)
        self.log_path = self._workdir / "server.log"
        self._log_file = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "envs.sites.server", self.name, str(self.db_path), str(self.requested_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file, env=env,
        )
        try:
            self.port = self._read_port()
            self._check_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_port(self) -> int:
        """The child prints its port once its socket listens (connections queue from then on)."""
        assert self._process is not None and self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], START_TIMEOUT_S)
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self._process.kill()
            self._process.wait()
            raise RuntimeError(
                f"the {self.name} site server did not start (port {self.requested_port}):\n{self.log_tail()}")
        return int(line)

    def _check_serving(self) -> None:
        """Load the home page once: proves the app renders, and warms its templates for the first task."""
        try:
            with urllib.request.urlopen(self.url + "/", timeout=START_TIMEOUT_S) as response:
                response.read()
        except OSError as exc:
            raise RuntimeError(f"the {self.name} site server started but its home page failed ({exc}):\n"
                               f"{self.log_tail()}") from exc

    def log_tail(self) -> str:
        """The end of the server's log (its errors and tracebacks)."""
        if self._log_file is not None:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path else ""

    def reset(self) -> None:
        """Put the pristine data back into the working database (the server keeps running)."""
        if self.db_path is None or self.pristine_path is None:
            raise RuntimeError(f"the {self.name} server is not running: call start() first")
        # The backup API copies page by page under SQLite's locks, so it is safe while the server
        # is between requests or in one; overwriting the file under an open connection would not be.
        source = sqlite3.connect(f"file:{self.pristine_path}?mode=ro", uri=True)
        target = sqlite3.connect(self.db_path, timeout=10)
        target.execute("PRAGMA synchronous = OFF")  # a throwaway copy: skip the fsyncs
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()  # the child exits when its stdin closes
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self.port = None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.port else "stopped"
        return f"SiteServer({self.name!r}, {where})"


async def login(page: Any, site: str, base_url: str, username: str, password: str | None = None) -> None:
    """Log a Playwright page in to a running site. The password defaults to the account's own.
    A site package may define its own `async def login(page, base_url, username, password)`;
    otherwise its standard /login form is filled."""
    from envs.sites.common import login_with_form

    if password is None:
        passwords = {user: secret for user, secret, _role in site_accounts(site)}
        if username not in passwords:
            raise ValueError(f"no account {username!r} on site {site!r}; accounts: {', '.join(passwords)}")
        password = passwords[username]
    site_login = getattr(load_site(site), "login", None) or login_with_form
    await site_login(page, base_url, username, password)


async def login_storage_state(browser: Any, site: str, base_url: str, username: str,
                              password: str | None = None) -> dict[str, Any]:
    """A Playwright storage_state (cookies) of a user logged in to the site, for tasks with
    require_login. Session cookies are signed with a fixed per-site key and named per site, so the
    state works on every server of that site and beside other sites' logins."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await login(page, site, base_url, username, password)
        return await context.storage_state()
    finally:
        await context.close()


def serve_sites(names: Sequence[str] | None = None, port: int | None = None) -> None:
    """Serve sites for browsing by hand until Ctrl-C (or SIGTERM, SIGHUP): all known sites by default,
    on ephemeral ports, or on port, port+1, ... Prints each site's URL and accounts."""
    names = list(names) if names else [name for name in SITES if _available(name)]
    servers: list[SiteServer] = []
    # Stopped by a signal, as by Ctrl-C: the servers stop and their working copies are removed.
    previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS}
    try:
        for index, name in enumerate(names):
            server = SiteServer(name, port=port + index if port else 0)
            servers.append(server)  # before it starts: a signal while it starts still removes its folder
            server.start()
            print(f"{name:8} {server.url}")
            for username, password, role in server.accounts:
                print(f"         {role:10} {username} / {password}")
        print("Serving; press Ctrl-C to stop.", flush=True)
        while True:
            for server in servers:
                if not server.is_running():
                    raise RuntimeError(f"the {server.name} server stopped unexpectedly:\n{server.log_tail()}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopped.")
    finally:
        for server in servers:
            server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _available(name: str) -> bool:
    try:
        load_site(name)
        return True
    except RuntimeError:
        return False


def _serve_in_child(name: str, db_path: str, port: int) -> None:
    """The child process: serve create_app(db_path) until the parent closes our stdin."""
    import uvicorn

    app = importlib.import_module(f"{SITES[name]}.app").create_app(Path(db_path))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sys.exit(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): choose another port, or 0 for a free one")
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))

    def exit_when_parent_is_gone() -> None:
        sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
        server.should_exit = True

    threading.Thread(target=exit_when_parent_is_gone, daemon=True).start()
    print(sock.getsockname()[1], flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads our stdout pipe from now on
    server.run(sockets=[sock])


if __name__ == "__main__":
    _serve_in_child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
