"""A headless Chromium driven by Playwright: one browser, one context per task, several tabs.

What a page does on its own is handled here, never left to hang an action, and recorded in
`BrowserSession.events` for BrowserEnv to report:
- dialogs are answered at once: alert OK, confirm OK, prompt with its default value, "leave this
  page?" leave. Accepting is what the action that raised the dialog asked for (dismissing a "Delete
  this?" would silently undo the agent's choice); risky actions are gated before they run. A tab
  that opens dialogs faster than anyone could answer them (a dialog storm: `while (true) alert()`,
  or an alert on a 5 ms timer) is closed unanswered: a loop that never yields hangs every later
  action on the page, and answering it only lets it go on.
- downloads are cancelled unless `accept_downloads`; then they are saved in `downloads_dir`.
- a file chooser opened by a click chooses nothing (the `upload_file` action picks files).
- a tab the page opens (target=_blank, window.open) becomes the active tab; one that closes itself
  hands the focus back to another tab.

Instead of launching Chromium, a session can attach to one already running (`cdp_url`, a browser
started with --remote-debugging-port): each task then gets a new context in that browser, closed when
the task ends, and closing the session only disconnects. With `use_open_tab` it drives the browser's
open tab in its own context instead (the user's cookies and logins), which it leaves open.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Download,
    FileChooser,
    Page,
    Playwright,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from envs.tokens import clip_chars
from envs.types import first_line

log = logging.getLogger(__name__)

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
    # WebRTC sends STUN/TURN over UDP straight to any host, past the context's proxy (the origin guard);
    # with this it uses only what goes through the proxy.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
]
INSTALL_HINT = (
    "install Debian's Chromium with `apt-get update && apt-get install -y chromium`, "
    "or point FORETHOUGHT_CHROMIUM (or --chromium) at a Chromium executable"
)


# A tab that opens STORM_DIALOGS dialogs within STORM_WINDOW_S is in a dialog storm. Each dialog of a page
# meant for people waits for a click, so ten in a second is no such page; an alert loop opens hundreds.
STORM_DIALOGS = 10
STORM_WINDOW_S = 1.0
DIALOG_MESSAGE_CHARS = 300  # of a dialog's text in what the agent is told (a page can alert a megabyte)


class BrowserNotFound(RuntimeError):
    pass


class BrowserCrashed(RuntimeError):
    """The browser died and could not be started again: the run cannot go on."""


HEADLESS_SHELL = "/usr/lib/chromium/chromium-headless-shell"


def find_chromium(explicit: str | None = None, headless: bool = True) -> str | None:
    """The Chromium to launch: an explicit path, $FORETHOUGHT_CHROMIUM, Debian's chromium-headless-shell
    (headless only: the same engine without the browser's UI and profile services, about a third of
    the CPU per task; Playwright's own headless default too), /usr/bin/chromium, or None to use
    Playwright's own browser. Raises BrowserNotFound when none of them exists."""
    chosen = explicit or os.environ.get("FORETHOUGHT_CHROMIUM")
    if chosen:
        path = shutil.which(chosen) or chosen
        if not Path(path).is_file():
            raise BrowserNotFound(f"Chromium not found at {chosen!r}: {INSTALL_HINT}")
        return path
    # Debian's /usr/bin/chromium-headless-shell is a script that runs this binary as its child.
    shells = (HEADLESS_SHELL, shutil.which("chromium-headless-shell")) if headless else ()
    for candidate in (*shells, "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
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
    downloads_dir: str | None = None  # where accepted downloads are kept; None: a temporary directory removed on close
    cdp_url: str | None = None  # attach to the Chromium at this DevTools URL (http://127.0.0.1:9222) instead
    use_open_tab: bool = False  # with cdp_url: drive the browser's open tab, in its own context, not a new one


@dataclass
class PageEvent:
    """Something a page did on its own during an action that the agent should hear about."""

    kind: str  # dialog | download | file_chooser
    note: str  # one sentence for the agent
    details: dict[str, str] = field(default_factory=dict)  # e.g. a dialog's type and message, a file's path


class BrowserSession:
    """Owns the Playwright driver and the browser; hands out one context per task."""

    def __init__(self, config: BrowserConfig | None = None) -> None:
        self.config = config or BrowserConfig()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.context: BrowserContext | None = None
        self.page: Page | None = None  # the active tab
        self.events: list[PageEvent] = []  # what pages did on their own, oldest first
        self.choosing_files = False  # set while upload_file answers a file chooser itself
        self._temporary_downloads_dir: Path | None = None
        self._saving: set[asyncio.Task] = set()  # downloads being written to downloads_dir
        self._dialog_times: weakref.WeakKeyDictionary[Page, deque[float]] = weakref.WeakKeyDictionary()
        self._stormed: weakref.WeakSet[Page] = weakref.WeakSet()  # tabs closed for a dialog storm

    async def start(self) -> BrowserSession:
        if self._browser is None:
            if self.config.cdp_url:
                return await self._attach(self.config.cdp_url)
            if not self.config.headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
                raise BrowserNotFound("--headed needs a display and $DISPLAY is not set: run without --headed, "
                                      "or under a virtual display (xvfb-run forethought ...)")
            executable = find_chromium(self.config.chromium, self.config.headless)
            self._playwright = await async_playwright().start()
            try:
                self._browser = await self._launch(executable)
            except Exception as exc:
                await self._playwright.stop()
                self._playwright = None
                raise BrowserNotFound(f"could not launch Chromium ({executable}): {first_line(exc)}. "
                                      f"{INSTALL_HINT}") from exc
        return self

    async def _attach(self, url: str) -> BrowserSession:
        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.connect_over_cdp(
                url, timeout=self.config.navigation_timeout_ms)
        except Exception as exc:
            await self._playwright.stop()
            self._playwright = None
            raise BrowserNotFound(f"could not attach to the browser at --cdp-url {url}: {first_line(exc)}; start "
                                  "Chromium with --remote-debugging-port=PORT (Chrome 136 and later only with "
                                  "--user-data-dir=DIR, not the default profile)") from exc
        return self

    @property
    def attached(self) -> bool:
        """Whether the browser is the user's (cdp_url), which this session must never close."""
        return self.config.cdp_url is not None

    async def _launch(self, executable: str | None) -> Browser:
        assert self._playwright is not None
        return await self._playwright.chromium.launch(
            executable_path=executable, headless=self.config.headless, args=CHROMIUM_ARGS
        )

    @property
    def connected(self) -> bool:
        """False once the browser process is gone (crashed or killed)."""
        return self._browser is not None and self._browser.is_connected()

    async def alive(self) -> bool:
        """Whether the browser still answers a request. Asked, not inferred from `connected`: Playwright
        learns of a killed browser a moment later, longer on a busy machine."""
        if not self.connected:
            return False
        try:
            cdp = await self.browser.new_browser_cdp_session()
            await asyncio.wait_for(cdp.send("Browser.getVersion"), self.config.navigation_timeout_ms / 1000)
            await cdp.detach()
        except (TimeoutError, PlaywrightError):
            return False
        return True

    async def relaunch(self) -> None:
        """A new browser in place of one that died. Its context (cookies, storage, tabs) died with it:
        open a new one with new_context(). Raises BrowserCrashed when the browser cannot start."""
        self.context, self.page = None, None
        if self.attached:
            raise BrowserCrashed(f"the browser at --cdp-url {self.config.cdp_url} went away")
        dead, self._browser = self._browser, None
        if dead is not None:
            try:
                await dead.close()
            except PlaywrightError as exc:  # it is gone either way
                log.debug("closing the dead browser: %s", exc)
        try:
            self._browser = await self._launch(find_chromium(self.config.chromium, self.config.headless))
        except Exception as exc:
            raise BrowserCrashed(f"the browser crashed and could not be started again: {exc}") from exc

    @property
    def browser(self) -> Browser:
        if self._browser is None:
            raise RuntimeError("BrowserSession.start() has not been called")
        return self._browser

    async def new_context(self, **options: Any) -> BrowserContext:
        """A fresh context (cookies, storage, tabs) for one task; the previous one is closed."""
        await self.close_context()
        cfg = self.config
        if cfg.use_open_tab:
            return await self._adopt_open_tab()
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

    async def _adopt_open_tab(self) -> BrowserContext:
        """The attached browser's own context and its first open tab (a new one if it has none)."""
        if not self.browser.contexts:
            raise BrowserNotFound(f"the browser at --cdp-url {self.config.cdp_url} has no open window to use")
        self.context = self.browser.contexts[0]
        self.context.set_default_timeout(self.config.action_timeout_ms)
        self.context.set_default_navigation_timeout(self.config.navigation_timeout_ms)
        self.context.on("page", self._on_new_page)
        for page in self.context.pages:
            self._on_new_page(page)
        self.page = self.context.pages[0] if self.context.pages else await self.context.new_page()
        return self.context

    def _on_new_page(self, page: Page) -> None:
        # A tab opened by the page (target=_blank, window.open) becomes the active one, as for a user.
        self.page = page
        page.on("dialog", self._on_dialog)
        page.on("download", self._on_download)
        page.on("filechooser", self._on_file_chooser)  # listening stops Chromium's own chooser from opening
        page.on("close", self._on_page_close)

    def _on_page_close(self, page: Page) -> None:
        # A tab that closes itself (window.close()) must not stay the active one.
        if self.page is page and self.context is not None:
            open_pages = self.pages
            self.page = open_pages[-1] if open_pages else None

    def _on_dialog(self, dialog: Dialog) -> None:
        page = dialog.page
        if page is not None and page in self._stormed:
            return  # its tab is closing: an answer would only let the storm go on
        kind, message = dialog.type, clip_chars(dialog.message, DIALOG_MESSAGE_CHARS)
        if page is not None and self._in_storm(page):
            self._stormed.add(page)
            self.events.append(PageEvent(
                "dialog_storm",
                f"the page opened dialogs without end ({STORM_DIALOGS} within {STORM_WINDOW_S:g} s, the last "
                f"{_a(kind)} {message!r}), faster than anyone could answer them; its tab "
                f"({clip_chars(page.url, 200)}) was closed to stop them",
                {"type": kind, "message": message, "url": page.url}))
            self._in_background(page.close(), "closing a tab in a dialog storm")
            return
        answer = dialog.default_value if kind == "prompt" else None
        how = {"prompt": f"answered with its default value {clip_chars(answer or '', DIALOG_MESSAGE_CHARS)!r}",
               "beforeunload": "answered 'leave the page'"}.get(kind, "accepted (OK)")
        self.events.append(PageEvent("dialog", f"the page showed {_a(kind)} dialog {message!r}; it was {how}",
                                     {"type": kind, "message": message, "response": how}))
        self._in_background(dialog.accept(answer), "answering a dialog")

    def _in_storm(self, page: Page) -> bool:
        """Whether this dialog makes STORM_DIALOGS on `page` within STORM_WINDOW_S."""
        times = self._dialog_times.setdefault(page, deque(maxlen=STORM_DIALOGS))
        times.append(time.monotonic())
        return len(times) == STORM_DIALOGS and times[-1] - times[0] < STORM_WINDOW_S

    def _on_file_chooser(self, chooser: FileChooser) -> None:
        if self.choosing_files:
            return
        self.events.append(PageEvent(
            "file_chooser",
            "the action opened a file chooser and no file was chosen; to pick a file, use "
            "upload_file(id, path) with the id of the file input or of the button that opens it",
            {"multiple": str(chooser.is_multiple())},
        ))

    def _on_download(self, download: Download) -> None:
        name = Path(download.suggested_filename).name or "download"
        if not self.config.accept_downloads:
            self.events.append(PageEvent(
                "download", f"the action started a download of {name!r}; downloads are off, so nothing was saved",
                {"file_name": name, "url": download.url, "path": ""}))
            return
        path = _free_path(self.downloads_dir / name)
        self.events.append(PageEvent("download", f"the action downloaded {name!r}; it is saved at {path}",
                                     {"file_name": name, "url": download.url, "path": str(path)}))
        task = self._in_background(download.save_as(path), f"saving the download {name!r}")
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    @property
    def downloads_dir(self) -> Path:
        """Where accepted downloads go: config.downloads_dir, or a temporary directory that close() removes."""
        if self.config.downloads_dir:
            path = Path(self.config.downloads_dir)
            path.mkdir(parents=True, exist_ok=True)
            return path
        if self._temporary_downloads_dir is None:
            self._temporary_downloads_dir = Path(tempfile.mkdtemp(prefix="forethought-downloads-"))
        return self._temporary_downloads_dir

    def _in_background(self, work: Any, what: str) -> asyncio.Task:
        async def run() -> None:
            try:
                await work
            except PlaywrightError as exc:  # the page or browser went away meanwhile
                log.warning("%s failed: %s", what, str(exc).splitlines()[0])
        return asyncio.get_running_loop().create_task(run())

    async def stop_loading(self, page: Page) -> None:
        """Stop a navigation or page load that does not finish (the browser's Stop button). A tab
        waiting for a document that never comes answers no script until it is stopped."""
        assert self.context is not None
        cdp = await self.context.new_cdp_session(page)
        try:
            await cdp.send("Page.stopLoading")
        finally:
            await cdp.detach()

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
        if self._saving:  # let downloads being saved finish, within the time a page may take to load
            await asyncio.wait(self._saving, timeout=self.config.navigation_timeout_ms / 1000)
        context, self.context, self.page = self.context, None, None
        if self.config.use_open_tab:  # the user's: their tabs stay open, without this run's routes
            context.remove_listener("page", self._on_new_page)
            await context.unroute_all(behavior="ignoreErrors")
            return
        try:
            if self.config.trace_path:
                Path(self.config.trace_path).parent.mkdir(parents=True, exist_ok=True)
                await context.tracing.stop(path=self.config.trace_path)
        finally:
            try:
                await context.close()  # also writes the HAR
            except PlaywrightError as exc:
                if await self.alive():
                    raise
                log.debug("closing the context of a dead browser: %s", exc)  # it died with the browser

    async def close(self) -> None:
        await self.close_context()
        if self._temporary_downloads_dir is not None:
            shutil.rmtree(self._temporary_downloads_dir, ignore_errors=True)
            self._temporary_downloads_dir = None
        if self._browser is not None:
            if not self.attached:  # an attached browser is the user's: stopping Playwright only disconnects
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None

    async def __aenter__(self) -> BrowserSession:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _a(word: str) -> str:
    return f"{'an' if word[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {word}"


def _free_path(path: Path) -> Path:
    """`path`, or `name (1).ext`, `name (2).ext`, … when a file of that name is already there; the
    file is created empty at once, so two downloads of the same name never share it."""
    candidate, n = path, 1
    while True:
        try:
            candidate.touch(exist_ok=False)
            return candidate
        except FileExistsError:
            candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
            n += 1
