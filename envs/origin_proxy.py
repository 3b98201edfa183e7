"""The origin guard's network wall: an HTTP proxy on 127.0.0.1 that a guarded browser context sends all
of its network traffic through, and that forwards only what the task's origin policy allows.

`context.route` does not see everything a context sends: Playwright follows a redirect without asking
the route again, and requests of a SharedWorker never reach it. Every one of those still leaves through
the context's proxy, one request (or, for https and WebSockets, one CONNECT tunnel) at a time, so this
proxy checks each hop of a redirect chain and each worker's request before a byte leaves for its host.

- A plain-http response that redirects outside the policy is not passed on: the redirect is refused
  where it is answered, so the record has the URL that redirected. (The redirects inside a tunnel the
  proxy cannot read; their next hop is refused instead.)
- A refused plain-http request gets no answer at all: the connection closes, and the browser fails the
  request (net::ERR_EMPTY_RESPONSE) rather than showing a page. A refused tunnel gets 403, which the
  browser fails as net::ERR_TUNNEL_CONNECTION_FAILED. An allowed host that cannot be reached is
  answered like a refused request.
- Each response says `Connection: close`, so the browser never sends a second request (perhaps for
  another origin) down a connection whose upstream is already chosen.
"""
from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 256 * 1024  # a request or response head longer than this is refused
CONNECT_TIMEOUT_S = 10.0
_HOP_BY_HOP = ("connection", "proxy-connection", "keep-alive", "proxy-authorization")


class OriginProxy:
    """`allows_url(url)` decides a plain-http request (the absolute URL the browser sends a proxy) and
    where an http redirect may lead; `allows_tunnel(host, port)` a CONNECT (https, wss, ws).
    `on_blocked(url, redirected_from)` hears of each refusal (`redirected_from`: the URL whose redirect
    to `url` was refused, else None), from the proxy's threads, before the browser learns of it."""

    def __init__(self, allows_url: Callable[[str], bool], allows_tunnel: Callable[[str, int], bool],
                 on_blocked: Callable[[str, str | None], None]) -> None:
        self.allows_url, self.allows_tunnel, self.on_blocked = allows_url, allows_tunnel, on_blocked
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._open: set[socket.socket] = set()  # closed by close(), which also ends their threads
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="origin-proxy", daemon=True).start()

    @property
    def server(self) -> str:
        """The proxy's address, as Playwright's `proxy={"server": ...}` takes it."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sockets, self._open = [self._listener, *self._open], set()
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            if self._track(client):
                threading.Thread(target=self._serve, args=(client,), name="origin-proxy-connection",
                                 daemon=True).start()

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                _close(sock)
                return False
            self._open.add(sock)
            return True

    def _forget(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(sockets)
        for sock in sockets:
            _close(sock)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head, rest = _read_head(client)
            if head is None:
                return
            method, target, version, headers = _parse_request_head(head)
            if method == "CONNECT":
                upstream = self._tunnel(client, target)
            else:
                upstream = self._forward(client, method, target, version, headers)
            if upstream is not None:
                _send(upstream, rest)
                self._relay(client, upstream, request_url=None if method == "CONNECT" else target)
        except (OSError, ValueError) as exc:  # a peer went away, or spoke something that is not HTTP
            log.debug("origin proxy connection ended: %s", exc)
        finally:
            self._forget(client, *([upstream] if upstream is not None else []))

    def _tunnel(self, client: socket.socket, target: str) -> socket.socket | None:
        host, port = _host_and_port(target)
        if not self.allows_tunnel(host, port):
            self.on_blocked(f"https://{target}", None)
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return None
        upstream = self._connect(host, port)
        if upstream is not None:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        return upstream

    def _forward(self, client: socket.socket, method: str, target: str, version: str,
                 headers: list[str]) -> socket.socket | None:
        if not self.allows_url(target):
            self.on_blocked(target, None)
            return None
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.hostname:
            return None  # the browser sends only http:// this way; anything else is refused
        upstream = self._connect(parts.hostname, parts.port or 80)
        if upstream is None:
            return None
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP]
        head = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        upstream.sendall(head.encode("latin-1"))
        return upstream

    def _connect(self, host: str, port: int) -> socket.socket | None:
        try:
            upstream = socket.create_connection((host.strip("[]"), port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            log.debug("origin proxy could not reach %s:%s: %s", host, port, exc)
            return None
        upstream.settimeout(None)
        return upstream if self._track(upstream) else None

    def _relay(self, client: socket.socket, upstream: socket.socket, request_url: str | None) -> None:
        """Bytes both ways until either side closes. For a plain-http request (`request_url`), the
        response's head is read first: a redirect outside the policy ends the exchange there, and
        any other head is passed on saying that the connection closes."""
        pending_head = b"" if request_url is not None else None
        while True:
            readable, _, _ = select.select([client, upstream], [], [])
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is client:
                    upstream.sendall(data)
                    continue
                if pending_head is not None:
                    pending_head += data
                    if b"\r\n\r\n" not in pending_head:
                        if len(pending_head) > MAX_HEAD_BYTES:
                            return
                        continue
                    assert request_url is not None
                    if (refused := self._refused_redirect(request_url, pending_head)) is not None:
                        self.on_blocked(refused, request_url)
                        return
                    data, pending_head = _closing_response(pending_head), None
                client.sendall(data)

    def _refused_redirect(self, request_url: str, response: bytes) -> str | None:
        """Where the response redirects to, when the policy does not allow it; else None."""
        status, *headers = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        code = status.split(" ")[1] if status.count(" ") else ""
        if not (code.startswith("3") and len(code) == 3):
            return None
        for header in headers:
            name, _, value = header.partition(":")
            if name.strip().lower() == "location" and value.strip():
                target = urljoin(request_url, value.strip())
                return None if self.allows_url(target) else target
        return None


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > MAX_HEAD_BYTES:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def _parse_request_head(head: bytes) -> tuple[str, str, str, list[str]]:
    request_line, *headers = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ")
    return method.upper(), target, version, headers


def _closing_response(data: bytes) -> bytes:
    """The response's head with `Connection: close` in place of any keep-alive, then what followed it."""
    head, rest = data.split(b"\r\n\r\n", 1)
    status, *headers = head.split(b"\r\n")
    kept = [h for h in headers if h.split(b":", 1)[0].strip().lower().decode("latin-1") not in _HOP_BY_HOP]
    return b"\r\n".join([status, *kept, b"Connection: close", b"Proxy-Connection: close", b"", rest])


def _host_and_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not host:port: {target!r}")
    return host, int(port)


def _send(sock: socket.socket, data: bytes) -> None:
    if data:
        sock.sendall(data)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
    except OSError:
        pass
    sock.close()
