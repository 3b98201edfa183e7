"""A local fake OpenAI-compatible endpoint for tests and benches (stdlib only).

    with FakeOpenAIServer(answers=["hello"], delay_s=0.2) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")

Serves POST /v1/chat/completions and GET /v1/models. Answers come from a list (in order) or a
callable given each request's JSON body. `failures` are served to the first requests, one each.
Every request is recorded in `requests`, and the most requests ever in flight in `max_in_flight`.
Usage counts a prompt as OpenAI does, pictures by their tiles (agent/llm/pricing.py); with
`reject_images` a request holding a picture gets OpenAI's answer for a model without vision.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent.llm.pricing import prompt_tokens
from envs.tokens import count_tokens
from world_model.messages import image_urls

AnswerSource = list[str] | Callable[[dict[str, Any]], str]
HOST = "127.0.0.1"


@dataclass
class Failure:
    """One failed response: an HTTP status (with optional Retry-After), a hang of `hang_s` seconds, or
    `html` as the body with `status` (Failure(200, html=...): a web server or login proxy at the base URL)."""

    status: int = 500
    retry_after: float | None = None  # seconds, sent as the Retry-After header
    hang_s: float = 0.0  # sleep this long, then drop the connection without answering
    message: str = "injected failure"
    html: str | None = None


@dataclass
class RecordedRequest:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]  # names lower-cased
    received_at: float = field(default_factory=time.perf_counter)


class FakeOpenAIServer:
    def __init__(
        self,
        answers: AnswerSource | None = None,
        *,
        delay_s: float = 0.0,
        failures: list[Failure] | None = None,
        reject_response_format: bool = False,
        support_n: bool = True,
        reject_n: bool = False,
        reject_seed: bool = False,
        reject_images: bool = False,
        reject_logprobs: bool = False,
        token_odds: dict[str, list[tuple[str, float]]] | None = None,
        cached_tokens: int = 0,
        model: str = "fake-model",
    ) -> None:
        self.answers = answers if answers is not None else []
        self.delay_s = delay_s
        self.failures = list(failures or [])
        self.reject_response_format = reject_response_format
        self.support_n = support_n
        self.reject_n = reject_n  # answer 400 to n > 1, as llama.cpp's server does
        self.reject_seed = reject_seed  # answer 400 to `seed`, as some OpenAI-compatible servers do
        self.reject_images = reject_images  # answer 400 to an image part, as a text-only model does
        self.reject_logprobs = reject_logprobs  # answer 400 to `logprobs`, as OpenAI's reasoning models do
        # With `logprobs` asked: an answer's tokens are its words, spaces and marks, each certain (logprob 0)
        # except those named here, whose likely tokens (with logprobs) are given.
        self.token_odds = token_odds or {}
        self.cached_tokens = cached_tokens
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._next_answer = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return f"http://{HOST}:{self._server.server_port}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat completion requests received so far."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server((HOST, 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Called from handler threads.
    def _take_failure(self) -> Failure | None:
        with self._lock:
            return self.failures.pop(0) if self.failures else None

    def _logprobs(self, text: str) -> dict[str, Any]:
        content = []
        for token in re.findall(r"\w+|\s+|[^\w\s]", text):
            likely = self.token_odds.get(token, [(token, 0.0)])
            content.append({"token": token, "logprob": dict(likely).get(token, 0.0),
                            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in likely]})
        return {"content": content}

    def _answer(self, body: dict[str, Any]) -> str | None:
        if callable(self.answers):
            return self.answers(body)
        with self._lock:
            if self._next_answer >= len(self.answers):
                return None
            answer = self.answers[self._next_answer]
            self._next_answer += 1
            return answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging handler must not block stop()
    request_queue_size = 128  # the default backlog of 5 drops connections under a burst of concurrent calls

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out close their sockets on purpose; anything else is worth seeing.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"  # keep-alive: no new TCP connection per request
    # Headers and body go out in separate writes; Nagle's algorithm would hold the body back ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            model = {"id": self.fake.model, "object": "model", "owned_by": "fake"}
            self._send(200, {"object": "list", "data": [model]})
        else:
            self._send(404, _error("not found", "invalid_request_error"))

    def do_POST(self) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, _error("request body is not JSON", "invalid_request_error"))
            return
        with fake._lock:
            fake.requests.append(RecordedRequest(self.path, body, {k.lower(): v for k, v in self.headers.items()}))
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            self._chat(body)
        finally:
            with fake._lock:
                fake.in_flight -= 1

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.fake
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, _error(f"unknown path {self.path}", "invalid_request_error"))
            return
        failure = fake._take_failure()
        if failure is not None:
            if failure.hang_s:
                time.sleep(failure.hang_s)
                self.close_connection = True
                return
            if failure.html is not None:
                self._send_bytes(failure.status, failure.html.encode("utf-8"), "text/html; charset=utf-8")
                return
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            self._send(failure.status, _error(failure.message, "server_error"), headers)
            return
        if fake.reject_response_format and "response_format" in body:
            self._send(400, _error("response_format json_schema is not supported", "invalid_request_error",
                                   param="response_format"))
            return
        if fake.reject_n and int(body.get("n") or 1) > 1:
            self._send(400, _error("Field 'n': Value must be between 1 <= value <= 1", "invalid_request_error",
                                   param="n"))
            return
        if fake.reject_images and image_urls(body.get("messages", [])):
            self._send(400, _error("Invalid content type. image_url is only supported by certain models.",
                                   "invalid_request_error", param="messages.[1].content.[1].type"))
            return
        if fake.reject_seed and "seed" in body:
            self._send(400, _error("Unrecognized request argument supplied: seed", "invalid_request_error"))
            return
        if fake.reject_logprobs and "logprobs" in body:
            self._send(400, _error("Unsupported parameter: 'logprobs' is not supported with this model.",
                                   "invalid_request_error", param="logprobs"))
            return
        if fake.delay_s:
            time.sleep(fake.delay_s)
        n = int(body.get("n") or 1) if fake.support_n else 1
        texts = []
        for _ in range(n):
            answer = fake._answer(body)
            if answer is None:
                message = f"fake server has no answer left after {fake._next_answer}"
                self._send(400, _error(message, "invalid_request_error"))
                return
            texts.append(answer)
        counted = prompt_tokens(body.get("messages", []))
        completion_tokens = sum(count_tokens(t) for t in texts)
        self._send(200, {
            "id": f"chatcmpl-fake{len(fake.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", fake.model),
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                | ({"logprobs": fake._logprobs(text)} if body.get("logprobs") else {})
                for i, text in enumerate(texts)
            ],
            "usage": {
                "prompt_tokens": counted,
                "completion_tokens": completion_tokens,
                "total_tokens": counted + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": min(fake.cached_tokens, counted)},
            },
        })

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _error(message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}
