"""A local HTTP server for tests: serves a dict of pages by path on 127.0.0.1 and records every path
asked for (tests of blocked requests check that nothing reached it). A form POST is recorded in
`posts` and redirected to /. Paths in `hanging` are never answered (until the server closes): a page
that never loads."""
from __future__ import annotations

import threading
from collections.abc import Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class PageServer:
    def __init__(self, pages: dict[str, str] | None = None, hanging: Collection[str] = frozenset()) -> None:
        self.pages: dict[str, str] = dict(pages or {})
        self.hits: list[str] = []
        self.posts: list[str] = []
        self.hanging = hanging
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                site.hits.append(self.path)
                path = self.path.split("?")[0]
                if path in site.hanging:
                    site.release.wait(120)
                    return
                body = site.pages.get(path, f"<title>{path}</title><p>page {path}</p>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")  # cross-origin fetches in guard tests
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                site.posts.append(self.path)
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
