"""A headless Chromium driven by Playwright: one browser, one context per task, several tabs."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

# Flags that work headless, as root, on a closed network (see shared/reference/browser.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
INSTALL_HINT = (
    "install Debian's Chromium with `apt-get update && apt-get install -y chromium`, "
    "or point FORETHOUGHT_CHROMIUM (or --chromium) at a Chromium executable"
)


class BrowserNotFound(RuntimeError):
    pass


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium to launch: an explicit path, $FORETHOUGHT_CHROMIUM, /usr/bin/chromium, or None
    to use Playwright's own browser. Raises BrowserNotFound when none of them exists."""
    chosen = explicit or os.environ.get("FORETHOUGHT_CHROMIUM")
    if chosen:
        path = shutil.which(chosen) or chosen
        if not Path(path).is_file():
            raise BrowserNotFound(f"Chromium not found at {chosen!r}: {INSTALL_HINT}")
        return path
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    if _playwright_chromium_installed():
        return None
    raise BrowserNotFound(f"no Chromium found: {INSTALL_HINT}")


def _playwright_chromium_installed() -> bool:
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    return any(cache.glob("chromium*/chrome-linux*/chrome"))


@dataclass
class BrowserConfig:
    chromium: str | None = None  # executable; None = find_chromium()
    headless: bool = True
    viewport_width: int = 1280
    viewport_height: int = 720
    action_timeout_ms: int = 5000
    navigation_timeout_ms: int = 30000
    trace_path: str | None = None  # Playwright trace.zip written when the context closes
    har_path: str | None = None  # network.har written when the context closes
    allow_file_access: bool = True
    accept_downloads: bool = False  # a page cannot save files unless the user asks for it


class BrowserSession:
    """Owns the Playwright driver and the browser; hands out one context per task."""

    def __init__(self, config: BrowserConfig | None = None) -> None:
        self.config = config or BrowserConfig()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.context: BrowserContext | None = None
        self.page: Page | None = None  # the active tab

    async def start(self) -> "BrowserSession":
        if self._browser is None:
            executable = find_chromium(self.config.chromium)
            self._playwright = await async_playwright().start()
            try:
                self._browser = await self._playwright.chromium.launch(
                    executable_path=executable, headless=self.config.headless, args=CHROMIUM_ARGS
                )
            except Exception as exc:
                await self._playwright.stop()
                self._playwright = None
                raise BrowserNotFound(f"could not launch Chromium ({executable}): {exc}. {INSTALL_HINT}") from exc
        return self

    @property
    def browser(self) -> Browser:
        if self._browser is None:
            raise RuntimeError("BrowserSession.start() has not been called")
        return self._browser

    async def new_context(self, **options: Any) -> BrowserContext:
        """A fresh context (cookies, storage, tabs) for one task; the previous one is closed."""
        await self.close_context()
        cfg = self.config
        kwargs: dict[str, Any] = {"viewport": {"width": cfg.viewport_width, "height": cfg.viewport_height},
                                  "accept_downloads": cfg.accept_downloads}
        if cfg.har_path:
            Path(cfg.har_path).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(record_har_path=cfg.har_path, record_har_content="embed")
        kwargs.update(options)
        self.context = await self.browser.new_context(**kwargs)
        self.context.set_default_timeout(cfg.action_timeout_ms)
        self.context.set_default_navigation_timeout(cfg.navigation_timeout_ms)
        if cfg.trace_path:
            await self.context.tracing.start(screenshots=True, snapshots=True)
        self.context.on("page", self._on_new_page)
        self.page = await self.context.new_page()
        return self.context

    def _on_new_page(self, page: Page) -> None:
        # A tab opened by the page (target=_blank, window.open) becomes the active one, as for a user.
        self.page = page

    @property
    def pages(self) -> list[Page]:
        return list(self.context.pages) if self.context else []

    async def new_tab(self, url: str | None = None) -> Page:
        assert self.context is not None
        page = await self.context.new_page()
        self.page = page
        if url:
            await page.goto(url)
        return page

    async def focus_tab(self, index: int) -> Page:
        pages = self.pages
        if not 0 <= index < len(pages):
            raise IndexError(f"no tab {index}: there are {len(pages)} tabs (0..{len(pages) - 1})")
        self.page = pages[index]
        await self.page.bring_to_front()
        return self.page

    async def close_tab(self) -> None:
        """Close the active tab; the last remaining tab is replaced by a blank one, never left empty."""
        assert self.context is not None and self.page is not None
        closing = self.page
        index = self.pages.index(closing)
        if len(self.pages) == 1:
            await self.context.new_page()
        await closing.close()
        pages = self.pages
        self.page = pages[min(index, len(pages) - 1)]
        await self.page.bring_to_front()

    async def close_context(self) -> None:
        if self.context is None:
            return
        context, self.context, self.page = self.context, None, None
        try:
            if self.config.trace_path:
                Path(self.config.trace_path).parent.mkdir(parents=True, exist_ok=True)
                await context.tracing.stop(path=self.config.trace_path)
        finally:
            await context.close()  # also writes the HAR

    async def close(self) -> None:
        await self.close_context()
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None

    async def __aenter__(self) -> "BrowserSession":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
