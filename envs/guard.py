"""Keeping the agent on its task's sites: an origin policy enforced at the browser.

Every request of a task's browser context (navigations, fetches, iframes, images, popups) goes through
`OriginGuard`, which decides from the URL alone: the task's own origins (its start URLs, or what the
task returns from an optional `allowed_origins()`), domains the user allowed (`--allow-domain`, which
also admits their subdomains), and `data:`/`about:`/`blob:` URLs pass; everything else is aborted and
recorded in `blocked`. `file://` (and `chrome://`) pass only when the task itself starts on a file://
page (MiniWoB++, local pages); an http task cannot open local files.

Two kinds of traffic bypass `context.route`: WebSocket connections, which go through their own route
(`context.route_web_socket`), and navigations to browser pages (`chrome://`, `view-source:`), which
BrowserEnv checks with `check_navigation` before a `goto` runs. Both are blocked and recorded alike.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from envs.tasks import START_URL_SEPARATOR, resolve_url

ALWAYS_ALLOWED_SCHEMES = frozenset({"data", "about", "blob"})
FILE_TASK_SCHEMES = frozenset({"file", "chrome"})
ROUTED_SCHEMES = frozenset({"http", "https", "file"})  # what context.route sees; other navigations it never does
# chrome://settings, devtools://..., view-source:..., javascript:...; not `localhost:8080/x`, which is no scheme.
_BROWSER_PAGE = re.compile(r"([A-Za-z][\w+.-]*)://|(view-source|javascript):", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass
class BlockedRequest:
    url: str
    resource_type: str  # Playwright's: document, script, fetch, xhr, image, ...
    main_frame: bool  # a navigation of a tab's top frame (not an iframe, not a subresource)


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
    allow_files: bool = False  # file:// and chrome:// (file-based tasks only)

    @classmethod
    def for_task(cls, task: Any, allow_domains: Iterable[str] = ()) -> OriginPolicy:
        """The task's origins: `task.allowed_origins()` if it has one, else those of its start URLs."""
        hook = getattr(task, "allowed_origins", None)
        urls = list(hook()) if callable(hook) else task_start_urls(task)
        policy = cls(allow_files=any(u.lower().startswith("file:") for u in urls))
        for url in urls:
            policy.allow_url(url)
        for domain in allow_domains:
            policy.allow_domain(domain)
        return policy

    def allow_url(self, url: str) -> None:
        origin = origin_of(url if "://" in url else f"http://{url}")
        if origin is not None:
            self.origins.add(origin)

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
        if scheme in FILE_TASK_SCHEMES:
            return self.allow_files
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

    def unlisted_urls(self) -> re.Pattern[str]:
        """A pattern matching every URL outside what this policy plainly allows, for `context.route`:
        URLs it does not match never reach Python at all (Playwright matches it in its driver), which
        saves a round trip per request. It may match allowed URLs too (`allows` has the last word),
        never the other way round."""
        if "*" in self.domains:
            return re.compile(r"(?!)")  # matches nothing: everything is allowed
        schemes = sorted(ALWAYS_ALLOWED_SCHEMES | ({"file"} if self.allow_files else set()))
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
        if self.allow_files:
            allowed.append("file://")
        return ", ".join(allowed) or "none"


class OriginGuard:
    """Enforces an OriginPolicy on a Playwright context and keeps the list of what it blocked."""

    def __init__(self, policy: OriginPolicy) -> None:
        self.policy = policy
        self.blocked: list[BlockedRequest] = []

    async def install(self, context: Any) -> None:
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

    def check_navigation(self, url: str) -> bool:
        """Whether a tab may be sent to `url`. For the URLs context.route never sees (chrome://,
        view-source:, ...) a refusal is recorded as a blocked navigation; the rest are left to the route."""
        match = _BROWSER_PAGE.match(url)
        if match is None or (match.group(1) or "").lower() in ROUTED_SCHEMES or self.policy.allows(url):
            return True
        self.blocked.append(BlockedRequest(url, "document", True))
        return False

    def blocked_navigations(self, since: int = 0) -> list[BlockedRequest]:
        return [b for b in self.blocked[since:] if b.main_frame]

    def navigation_error(self, since: int = 0) -> str | None:
        """What to tell the agent when a tab was kept from leaving the allowed origins, else None."""
        navigations = self.blocked_navigations(since)
        if not navigations:
            return None
        return (f"navigation to {navigations[-1].url} was blocked: it is outside this task's allowed origins "
                f"({self.policy.describe()}); stay on the task's sites")


def _literal(text: str) -> str:
    """`text` matched literally by both Python's and JavaScript's regular expressions."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", text)


def _is_main_frame_navigation(request: Any) -> bool:
    try:
        return request.is_navigation_request() and request.frame.parent_frame is None
    except Exception:  # a popup's first request may come before its frame exists: it is a top-level load
        return request.resource_type == "document"
