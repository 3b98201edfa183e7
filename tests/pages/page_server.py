"""A local HTTP server for tests: serves a dict of pages by path on 127.0.0.1 and records every path
asked for (tests of blocked requests check that nothing reached it). A form POST is recorded in
`posts` and redirected to /. Paths in `hanging` are never answered (until the server closes): a page
that never loads. A path in `echoes` answers with what its function makes of the request's data (a POST's
body, a GET's query string): a content type and the body (tests of what a run directory keeps of it).
`/redirect?to=URL&status=N` (GET or POST) answers N (302 unless given) with Location URL: the origin
guard's tests redirect through it."""
from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

Echo = Callable[[bytes], tuple[str, bytes]]  # the request's data -> (content type, body)


class PageServer:
    def __init__(self, pages: dict[str, str] | None = None, hanging: Collection[str] = frozenset(),
                 echoes: Mapping[str, Echo] | None = None) -> None:
        self.pages: dict[str, str] = dict(pages or {})
        self.echoes = dict(echoes or {})
        self.hits: list[str] = []
        self.posts: list[str] = []
        self.hanging = hanging
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                site.hits.append(self.path)
                path, _, query = self.path.partition("?")
                if path == "/redirect":
                    self.redirect(query)
                    return
                if path in site.echoes:
                    self.answer(*site.echoes[path](query.encode()))
                    return
                if path in site.hanging:
                    site.release.wait(120)
                    return
                self.answer("text/html; charset=utf-8",
                            site.pages.get(path, f"<title>{path}</title><p>page {path}</p>").encode())

            def answer(self, content_type: str, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")  # cross-origin fetches in guard tests
                self.end_headers()
                self.wfile.write(body)

            def redirect(self, query: str) -> None:
                asked = parse_qs(query)
                self.send_response(int(asked.get("status", ["302"])[0]))
                self.send_header("Location", asked["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                site.posts.append(self.path)
                path, _, query = self.path.partition("?")
                if path == "/redirect":
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    self.redirect(query)
                    return
                if self.path in site.echoes:
                    data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    self.answer(*site.echoes[self.path](data))
                    return
                self.send_response(303)
                self.send_header("Location", "/")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
