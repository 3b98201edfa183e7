"""Keeping the agent on its task's sites: an origin policy enforced at the browser.

Every request of a task's browser context (navigations, fetches, iframes, images, popups) goes through
`OriginGuard`, which decides from the URL alone: the task's own origins (its start URLs, or what the
task returns from an optional `allowed_origins()`), domains the user allowed (`--allow-domain`, which
also admits their subdomains), and `data:`/`about:`/`blob:` URLs pass; everything else is aborted and
recorded in `blocked`. `file://` URLs pass only inside the task's own folder (the folder of a file://
start page; a task may name folders itself, as file:// URLs ending in `/`) and folders the user allowed
(`--allow-file`); `chrome://` only for tasks that start on a file:// page (MiniWoB++, local pages). An
http task cannot open local files unless the user allows some.

What `context.route` never sees is caught elsewhere:
- each hop of a redirect, and requests of shared workers: the context sends all its network traffic
  through `OriginProxy` (envs/origin_proxy.py), which forwards only what the policy allows. A blocked
  hop is recorded with the URL that redirected to it once the browser reports the failed request.
- service workers: a guarded context has none (`service_workers="block"`).
- WebSocket connections go through their own route (`context.route_web_socket`).
- navigations to browser pages (`chrome://`, `view-source:`, `javascript:`), which BrowserEnv checks
  with `check_navigation` before a `goto` runs, on the URL as the browser would read it (`browser_url`).
All are blocked and recorded alike.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from envs.origin_proxy import OriginProxy
from envs.tasks import START_URL_SEPARATOR, resolve_url

ALWAYS_ALLOWED_SCHEMES = frozenset({"data", "about", "blob"})
ROUTED_SCHEMES = frozenset({"http", "https", "file"})  # what context.route sees; other navigations it never does
# chrome://settings, devtools://..., view-source:..., javascript:...; not `localhost:8080/x`, which is no scheme.
_BROWSER_PAGE = re.compile(r"([A-Za-z][\w+.-]*)://|(view-source|javascript):", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_C0_CONTROLS_AND_SPACE = "".join(map(chr, range(0x21)))


@dataclass
class BlockedRequest:
    url: str
    resource_type: str  # Playwright's: document, script, fetch, xhr, image, ...; "other" when the browser never said
    main_frame: bool  # a navigation of a tab's top frame (not an iframe, not a subresource)
    redirected_from: str | None = None  # the URL whose redirect led here

    def describe(self) -> str:
        return self.url + (f" (redirected from {self.redirected_from})" if self.redirected_from else "")


def browser_url(url: str) -> str:
    """`url` as the browser reads it before anything else (the URL standard's first steps): C0 control
    characters and spaces around it stripped, tabs and newlines inside it removed, the scheme in lower
    case. `goto(' javascript:...')` is a javascript: URL to the browser, so it must be one to the guard."""
    url = re.sub(r"[\t\n\r]", "", url.strip(_C0_CONTROLS_AND_SPACE))
    scheme = _SCHEME.match(url)
    return url[: scheme.end()].lower() + url[scheme.end():] if scheme else url


def file_path(url: str) -> Path | None:
    """The local path a file:// URL reads, symlinks and `..` resolved; None for a file URL on another host."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc.lower() not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    return Path(path).resolve() if path.startswith("/") and "\x00" not in path else None


def origin_of(url: str) -> str | None:
    """scheme://host:port of an http(s)/ws(s) URL, with the default port spelled out; else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port or _DEFAULT_PORTS[scheme]}"


def task_start_urls(task: Any) -> list[str]:
    """The start URLs of the task shapes this project has (UrlTask, MiniWoBTask, WebArenaTask)."""
    config = getattr(task, "config", None)
    if config is not None and getattr(config, "start_urls", None):
        return list(config.start_urls)
    start_url = getattr(task, "start_url", None)
    if isinstance(start_url, str):
        return [resolve_url(u.strip()) for u in start_url.split(START_URL_SEPARATOR) if u.strip()]
    url = getattr(task, "url", None)
    return [url] if isinstance(url, str) else []


@dataclass
class OriginPolicy:
    origins: set[str] = field(default_factory=set)  # scheme://host:port
    domains: set[str] = field(default_factory=set)  # host names allowed with their subdomains, any port
    file_dirs: set[Path] = field(default_factory=set)  # file:// may read these files and folders (resolved)
    browser_pages: bool = False  # chrome:// pages (tasks that start on a file:// page only)

    @classmethod
    def for_task(cls, task: Any, allow_domains: Iterable[str] = (),
                 allow_files: Iterable[str | Path] = ()) -> OriginPolicy:
        """The task's origins: `task.allowed_origins()` if it has one, else those of its start URLs;
        for a file:// URL, the folder it is in (or the folder itself, for a URL ending in `/`)."""
        hook = getattr(task, "allowed_origins", None)
        urls = list(hook()) if callable(hook) else task_start_urls(task)
        policy = cls(browser_pages=any(u.lower().startswith("file:") for u in urls))
        for url in urls:
            policy.allow_url(url)
        for domain in allow_domains:
            policy.allow_domain(domain)
        for path in allow_files:
            policy.allow_file(path)
        return policy

    def allow_url(self, url: str) -> None:
        if url.lower().startswith("file:"):
            path = file_path(url)
            if path is not None:
                self.file_dirs.add(path if url.endswith("/") else path.parent)
            return
        origin = origin_of(url if "://" in url else f"http://{url}")
        if origin is not None:
            self.origins.add(origin)

    def allow_file(self, path: str | Path) -> None:
        """A folder (with everything under it) or a single file that file:// URLs may read (`--allow-file`)."""
        resolved = Path(path).expanduser().resolve()
        if not resolved.exists():
            raise ValueError(f"--allow-file {path}: no such file or folder")
        self.file_dirs.add(resolved)

    def allow_domain(self, domain: str) -> None:
        """`example.com` (and its subdomains, any port), a URL such as `http://127.0.0.1:8080` (that origin
        only), or `*` (everything, e.g. for debugging)."""
        domain = domain.strip()
        if not domain:
            raise ValueError("--allow-domain needs a domain, e.g. --allow-domain example.com")
        if domain == "*":
            self.domains.add("*")
            return
        origin = origin_of(domain) if "://" in domain else None
        if origin is not None:
            self.origins.add(origin)
            return
        host = urlsplit(domain if "://" in domain else f"http://{domain}").hostname
        if not host:
            raise ValueError(f"--allow-domain {domain!r} is not a domain; pass e.g. example.com")
        self.domains.add(host.lower().lstrip("*."))

    def allows(self, url: str) -> bool:
        scheme = url.split(":", 1)[0].lower()
        if scheme in ALWAYS_ALLOWED_SCHEMES:
            return True
        if scheme == "file":
            path = file_path(url)
            return path is not None and any(path.is_relative_to(folder) for folder in self.file_dirs)
        if scheme == "chrome":
            return self.browser_pages
        if "*" in self.domains:
            return True
        origin = origin_of(url)
        if origin is None:
            return False
        if scheme in ("ws", "wss"):  # a site's WebSocket on its own host and port belongs to its origin
            origin = "http" + origin[2:]
        if origin in self.origins:
            return True
        host = urlsplit(url).hostname or ""
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def allows_tunnel(self, host: str, port: int) -> bool:
        """A CONNECT tunnel to host:port, which the browser opens for https, wss and ws alike."""
        return any(self.allows(f"{scheme}://{host}:{port}/") for scheme in ("https", "wss", "ws"))

    def unlisted_urls(self) -> re.Pattern[str]:
        """A pattern matching every URL outside what this policy plainly allows, for `context.route`:
        URLs it does not match never reach Python at all (Playwright matches it in its driver), which
        saves a round trip per request. It may match allowed URLs too (`allows` has the last word),
        never the other way round: every file:// URL does, since only `allows` resolves its path."""
        if "*" in self.domains:
            return re.compile(r"^file:", re.IGNORECASE)  # everything else is allowed
        schemes = sorted(ALWAYS_ALLOWED_SCHEMES)
        allowed = [f"(?:{'|'.join(schemes)}):"]
        for origin in sorted(self.origins):
            parts = re.fullmatch(r"(\w+)://(.*):(\d+)", origin)
            if parts is None:  # origin_of writes every origin as scheme://host:port
                raise ValueError(f"not an origin: {origin!r}")
            scheme, host, port = parts.groups()
            optional = "?" if _DEFAULT_PORTS.get(scheme) == int(port) else ""
            allowed.append(f"{scheme}://{_literal(host)}(?::{port}){optional}(?:[/?#]|$)")
        for domain in sorted(self.domains):
            allowed.append(f"https?://(?:[a-z0-9-]+\\.)*{_literal(domain)}(?::\\d+)?(?:[/?#]|$)")
        return re.compile(f"^(?!{'|'.join(allowed)})", re.IGNORECASE)

    def describe(self) -> str:
        allowed = sorted(self.origins) + sorted(f"*.{d}" if d != "*" else d for d in self.domains)
        allowed += sorted(folder.as_uri() + ("/" if folder.is_dir() else "") for folder in self.file_dirs)
        return ", ".join(allowed) or "none"


class OriginGuard:
    """Enforces an OriginPolicy on a Playwright context and keeps the list of what it blocked."""

    def __init__(self, policy: OriginPolicy) -> None:
        self.policy = policy
        self.blocked: list[BlockedRequest] = []
        # Blocked by the proxy and not yet matched to the browser's report of the failed request (which
        # says what kind of request it was and what redirected to it); a worker's request never is.
        self._unreported: list[BlockedRequest] = []
        self._lock = threading.Lock()  # the proxy records from its own threads

    async def open_context(self, new_context: Callable[..., Awaitable[Any]], **options: Any) -> Any:
        """A guarded context from `new_context(**options)` (e.g. BrowserSession.new_context): no service
        workers, its network traffic through a proxy of its own (closed with the context), and the routes."""
        proxy = OriginProxy(self.policy.allows, self.policy.allows_tunnel, self._blocked_by_proxy)
        try:
            context = await new_context(**options, service_workers="block", proxy={"server": proxy.server})
            context.on("close", lambda _: proxy.close())
            await self.install(context)
        except BaseException:
            proxy.close()
            raise
        return context

    async def install(self, context: Any) -> None:
        """The routes alone. Redirect hops and workers' requests escape them: use `open_context`."""
        context.on("requestfailed", self._on_request_failed)
        await context.route(self.policy.unlisted_urls(), self._route)
        await context.route_web_socket(lambda url: True, self._route_web_socket)

    async def _route(self, route: Any) -> None:
        request = route.request
        if self.policy.allows(request.url):
            await route.fallback()  # on to any route the task set up, or to the network
            return
        self.blocked.append(BlockedRequest(request.url, request.resource_type, _is_main_frame_navigation(request)))
        await route.abort("blockedbyclient")

    async def _route_web_socket(self, socket: Any) -> None:
        if self.policy.allows(socket.url):
            socket.connect_to_server()  # messages then pass both ways unchanged
            return
        self.blocked.append(BlockedRequest(socket.url, "websocket", False))
        await socket.close(code=1008, reason="blocked: outside this task's allowed origins")  # 1008: policy violation

    def _blocked_by_proxy(self, url: str, redirected_from: str | None) -> None:
        # Called before the proxy refuses the request, so the record is there before the browser reports it.
        record = BlockedRequest(url, "other", False, redirected_from)
        with self._lock:
            self.blocked.append(record)
            self._unreported.append(record)

    def _on_request_failed(self, request: Any) -> None:
        """Completes the proxy's record of a request the browser saw fail: its kind, and, for a hop the
        proxy refused, its full URL (a tunnel shows the proxy only host and port) and the URL that
        redirected to it. (When the proxy refused a redirect, the request that failed is the one redirecting.)"""
        url = request.url.split("#", 1)[0]  # the browser sends no fragment
        with self._lock:
            record = next((r for r in self._unreported if url in (r.redirected_from, r.url)
                           or _same_tunnel(r.url, url)), None)
            if record is None:
                return
            self._unreported.remove(record)
        record.resource_type, record.main_frame = request.resource_type, _is_main_frame_navigation(request)
        if record.redirected_from != url:  # the browser followed a redirect here, and the proxy refused this hop
            source = request.redirected_from
            record.url, record.redirected_from = url, source.url if source is not None else None

    def check_navigation(self, url: str) -> bool:
        """Whether a tab may be sent to `url`. For the URLs context.route never sees (chrome://,
        view-source:, ...) a refusal is recorded as a blocked navigation; the rest are left to the route.
        `url` is read as the browser would read it (`browser_url`); pass the browser that same URL."""
        url = browser_url(url)
        if self.navigation_allowed(url):
            return True
        self.blocked.append(BlockedRequest(url, "document", True))
        return False

    def navigation_allowed(self, url: str) -> bool:
        """check_navigation without recording anything."""
        url = browser_url(url)
        match = _BROWSER_PAGE.match(url)
        return match is None or (match.group(1) or "").lower() in ROUTED_SCHEMES or self.policy.allows(url)

    def blocked_navigations(self, since: int = 0) -> list[BlockedRequest]:
        return [b for b in self.blocked[since:] if b.main_frame]

    def navigation_error(self, since: int = 0) -> str | None:
        """What to tell the agent when a tab was kept from leaving the allowed origins, else None."""
        navigations = self.blocked_navigations(since)
        if not navigations:
            return None
        return (f"navigation to {navigations[-1].describe()} was blocked: it is outside this task's allowed origins "
                f"({self.policy.describe()}); stay on the task's sites")


def _literal(text: str) -> str:
    """`text` matched literally by both Python's and JavaScript's regular expressions."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", text)


def _same_tunnel(proxy_url: str, request_url: str) -> bool:
    """Whether the proxy's record of a refused tunnel (https://host:port, which also carries wss and ws)
    is the browser's request to `request_url`."""
    if "/" in proxy_url.split("://", 1)[-1]:
        return False  # not a tunnel: a full URL
    tunnel, request = origin_of(proxy_url), origin_of(request_url)
    return tunnel is not None and request is not None and tunnel.split("://")[1] == request.split("://")[1]


def _is_main_frame_navigation(request: Any) -> bool:
    try:
        return request.is_navigation_request() and request.frame.parent_frame is None
    except Exception:  # a popup's first request may come before its frame exists: it is a top-level load
        return request.resource_type == "document"
