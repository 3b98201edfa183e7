"""Simple tasks: open a URL and pursue a goal in words. Benchmarks add their own Task classes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAGES_DIR = Path(__file__).parent / "pages"
START_URL_SEPARATOR = " |AND| "  # WebArena: several start URLs, one tab each


def resolve_url(url: str) -> str:
    """Accept `bundled:NAME` (a page shipped in envs/pages), a file path, or a URL."""
    if url.startswith("bundled:"):
        page = PAGES_DIR / f"{url.removeprefix('bundled:')}.html"
        if not page.is_file():
            names = ", ".join(sorted(p.stem for p in PAGES_DIR.glob("*.html")))
            raise ValueError(f"no bundled page {url!r}; bundled pages: {names}")
        return page.resolve().as_uri()
    if "://" not in url and not url.startswith(("about:", "data:")):
        path = Path(url)
        if path.exists():
            return path.resolve().as_uri()
        return f"http://{url}"
    return url


@dataclass
class UrlTask:
    """Open `start_url` (several joined by ' |AND| ' open in tabs) and pursue `goal`.

    It has no evaluator of its own: reward stays 0 and the episode ends when the agent answers."""

    id: str
    start_url: str
    goal: str

    async def setup(self, context: Any, page: Any) -> str:
        urls = [resolve_url(u.strip()) for u in self.start_url.split(START_URL_SEPARATOR)]
        await page.goto(urls[0])
        for url in urls[1:]:
            tab = await context.new_page()
            await tab.goto(url)
        if len(urls) > 1:
            await page.bring_to_front()
        return self.goal

    async def validate(self, page: Any, answer: str | None) -> tuple[float, bool, dict[str, Any]]:
        return 0.0, False, {}

    async def teardown(self) -> None:
        return None

    async def reset_state(self) -> bool:
        return False  # whatever serves the URL is not ours to reset
