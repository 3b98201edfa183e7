"""Helpers every local site shares: database connections, cookie sessions and logins, templates,
pagination, and the Playwright login that fills a site's standard /login form."""
from __future__ import annotations

import hashlib
import math
import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.templating import Jinja2Templates


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection for one request. Connections are short-lived so that SiteServer.reset() can
    overwrite the database between tasks without a server holding stale pages or locks."""
    conn = sqlite3.connect(db_path, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid the INSERT just run on `cursor` wrote (sqlite3 types it optional: None before one)."""
    if cursor.lastrowid is None:
        raise RuntimeError("the statement inserted no row")
    return cursor.lastrowid


@contextmanager
def open_db(db_path: Path) -> Iterator[sqlite3.Connection]:
    """`connect` for one request, committed when the handler finishes without an error."""
    conn = connect(db_path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def session_middleware(site: str) -> Middleware:
    """Signed-cookie sessions. The cookie name is per site because browsers share cookies between
    ports of 127.0.0.1: two sites in one browser context must not overwrite each other's login.
    The key is fixed so a saved storage_state stays valid across servers and resets of the site."""
    return Middleware(
        SessionMiddleware,
        secret_key=f"forethought-local-{site}-session-key",
        session_cookie=f"{site}_session",
        same_site="lax",
        https_only=False,
    )


def templates_for(package_dir: Path) -> Jinja2Templates:
    """Templates from `<package_dir>/templates`; a variable missing from the context is an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(package_dir / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def hash_password(password: str, salt: str) -> str:
    # Local demo sites: a salted SHA-256 keeps seeding fast; these are not real credentials.
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


def check_password(password: str, salt: str, password_hash: str) -> bool:
    return hash_password(password, salt) == password_hash


def log_in(request: Request, user_id: int) -> None:
    request.session.clear()
    request.session["user_id"] = user_id


def log_out(request: Request) -> None:
    request.session.clear()


def session_user_id(request: Request) -> int | None:
    user_id = request.session.get("user_id")
    return int(user_id) if user_id is not None else None


def flash(request: Request, message: str, kind: str = "success") -> None:
    """A message shown once on the next page (after a POST + redirect)."""
    request.session.setdefault("flash", []).append({"kind": kind, "text": message})


def pop_flashes(request: Request) -> list[dict[str, str]]:
    return request.session.pop("flash", [])


def redirect(url: str) -> RedirectResponse:
    """303 See Other: the browser follows a form POST with a GET, so reloading never re-submits."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """A post-login destination on this site only (no open redirects to other hosts)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return default


def local_path(target: str) -> str:
    """Only redirect within the site: keep the path and query of an absolute URL."""
    parts = urlsplit(target)
    path = parts.path if parts.path.startswith("/") else "/"
    return path + (f"?{parts.query}" if parts.query else "")


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Pagination:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def first_item(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last_item(self) -> int:
        return min(self.total, self.offset + self.per_page)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def query_with(request: Request, **changes: Any) -> str:
    """The current URL's query string with some parameters replaced (for pagination and sort links)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params) if params else request.url.path


async def login_with_form(page: Any, base_url: str, username: str, password: str) -> None:
    """Log a Playwright page in through the site's /login form (fields `username` and `password`,
    submitted by the form's button). Raises RuntimeError when the site rejects the credentials."""
    await page.goto(base_url.rstrip("/") + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("form#login-form [type=submit]")
    if "/login" in page.url:
        raise RuntimeError(f"could not log in to {base_url} as {username!r}: the site rejected the credentials")
