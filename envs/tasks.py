"""Simple tasks: open a URL and pursue a goal in words. Benchmarks add their own Task classes."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from playwright.async_api import TimeoutError as PlaywrightTimeoutError

log = logging.getLogger(__name__)
PAGES_DIR = Path(__file__).parent / "pages"
START_URL_SEPARATOR = " |AND| "  # WebArena: several start URLs, one tab each
PAGE_SUFFIXES = (".html", ".htm", ".xhtml", ".svg", ".txt", ".pdf")  # a name with one of these is a file, not a host
TASK_ID_CHARS = re.compile(r"[^A-Za-z0-9._]+")  # anything else becomes '-': a task id names a directory
TASK_ID_LENGTH = 80


def resolve_url(url: str) -> str:
    """Accept `bundled:NAME` (a page shipped in envs/pages), a file path, or a URL. A path (or file://
    URL) naming no file is refused with ValueError("no such file: PATH")."""
    if url.startswith("bundled:"):
        page = PAGES_DIR / f"{url.removeprefix('bundled:')}.html"
        if not page.is_file():
            names = ", ".join(sorted(p.stem for p in PAGES_DIR.glob("*.html")))
            raise ValueError(f"no bundled page {url!r}; bundled pages: {names}")
        return page.resolve().as_uri()
    if url.startswith("file:"):
        path = Path(url2pathname(urlsplit(url).path))
        if not path.exists():
            raise ValueError(f"no such file: {path}")
        return url
    if "://" not in url and not url.startswith(("about:", "data:")):
        path = Path(url).expanduser()
        if path.exists():
            return path.resolve().as_uri()
        if url.startswith(("/", "./", "../", "~")):
            raise ValueError(f"no such file: {url}")
        if _looks_like_a_file(url):
            raise ValueError(f"no such file: {url} (a web page needs its URL, with http:// or https://)")
        return f"http://{url}"
    return url


def _looks_like_a_file(text: str) -> bool:
    """`pages/x.html`, `x.html`: a file; `example.com/x`, `localhost:8000/x`: a host and a path."""
    first, slash, _ = text.partition("/")
    if not slash:
        return Path(text).suffix.lower() in PAGE_SUFFIXES
    return "." not in first and ":" not in first and first != "localhost"


def url_task_id(start_url: str) -> str:
    """A task id for a page, a directory name saying which page: `bundled:demo` -> `demo`, a file path or
    file:// URL -> its file's stem, `http://127.0.0.1:8000/shop/cart?x=1` -> `127.0.0.1-8000-shop-cart`
    (host, port and path; the query and fragment are left out). Several start URLs: the first names it."""
    url = start_url.split(START_URL_SEPARATOR)[0].strip()
    if url.startswith("bundled:"):
        name = url.removeprefix("bundled:")
    elif url.startswith("data:"):
        name = "data"
    else:
        try:
            parts = urlsplit(resolve_url(url))
        except ValueError:  # no such file: still named after it
            parts = urlsplit(Path(url).expanduser().absolute().as_uri())
        if parts.scheme == "file":
            name = Path(url2pathname(parts.path)).stem
        elif parts.netloc:
            name = f"{parts.hostname or ''}-{parts.port or ''}-{parts.path}"
        else:
            name = f"{parts.scheme}-{parts.path}"  # about:blank
    slug = TASK_ID_CHARS.sub("-", name).strip("-.")[:TASK_ID_LENGTH].rstrip("-.")
    return slug or "task"


async def open_page(page: Any, url: str) -> None:
    """Open `url` in `page`. Once its document is there, a resource that never finishes loading (an image
    whose server never answers) only delays it: after the navigation timeout the loading is stopped and
    the page is observed as it is."""
    await page.goto(url, wait_until="domcontentloaded")
    try:
        await page.wait_for_load_state("load")
    except PlaywrightTimeoutError:
        await page.evaluate("window.stop()")
        log.warning("%s did not finish loading within the navigation timeout: loading stopped, observed as it is",
                    url)


@dataclass
class UrlTask:
    """Open `start_url` (several joined by ' |AND| ' open in tabs) and pursue `goal`.

    It has no evaluator of its own: reward stays 0 and the episode ends when the agent answers."""

    id: str
    start_url: str
    goal: str

    async def setup(self, context: Any, page: Any) -> str:
        urls = [resolve_url(u.strip()) for u in self.start_url.split(START_URL_SEPARATOR)]
        await open_page(page, urls[0])
        for url in urls[1:]:
            await open_page(await context.new_page(), url)
        if len(urls) > 1:
            await page.bring_to_front()
        return self.goal

    async def validate(self, page: Any, answer: str | None) -> tuple[float, bool, dict[str, Any]]:
        return 0.0, False, {}

    async def teardown(self) -> None:
        return None

    async def reset_state(self) -> bool:
        return False  # whatever serves the URL is not ours to reset
