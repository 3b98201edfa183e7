"""The LLM client for any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp)."""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import openai

from agent.llm.parsing import TokenLogprobs, enum_fields, enum_probabilities, extract_json
from agent.llm.pricing import PriceTable
from agent.llm.pricing import prompt_tokens as count_prompt_tokens
from agent.llm.protocol import Completion, ConfigError, Role, Usage, check_role
from envs.secrets import without_credentials
from envs.tokens import count_tokens
from traces.schema import prompt_hash
from world_model.messages import Message, image_urls, text_part

log = logging.getLogger(__name__)

_RETRY_STATUSES = {408, 409, 429}  # and every 5xx
TOP_LOGPROBS = 10  # likely tokens asked per position when the schema has a field of fixed values (OpenAI allows 20)
# Optional request fields some endpoints refuse (a 400 naming them): sent until refused, then never again.
_OPTIONAL = {"seed": ("seed",), "logprobs": ("logprobs", "top_logprobs")}
# How servers refuse a picture: OpenAI answers 400 "Invalid content type. image_url is only supported by
# certain models", vLLM 400 "... is not a multimodal model", llama.cpp without a projector 500 "image
# input is not supported". Asked only of a request that holds a picture.
_NO_IMAGES = {400: re.compile(r"image|multimodal|vision|content[ _-]?type|content part", re.IGNORECASE),
              500: re.compile(r"image input is not supported|not a multimodal|does not support (image|vision)",
                              re.IGNORECASE)}
# Server-specific fields for the requests made in this context (the local server's slot: local_model.py).
EXTRA_BODY: ContextVar[dict[str, Any] | None] = ContextVar("EXTRA_BODY", default=None)


class LLMError(Exception):
    """A model call failed for good (after retries); the message is one line saying what happened."""


class OutputNotInFormat(LLMError):
    """The server could not fit its own answer to the requested format (llama.cpp answers 500 when a
    constrained generation ends outside its grammar). Asking again verbatim would fail the same way."""


class EndpointUnreachable(LLMError):
    """The endpoint could not be reached (connection refused, DNS, timeouts) even after retries."""


@dataclass
class RetryPolicy:
    max_retries: int = 4  # retries after the first attempt
    base_delay_s: float = 0.5  # backoff before retry k is about base * 2**k, with jitter
    max_delay_s: float = 20.0  # cap for backoff and for a server's Retry-After

    def backoff_s(self, retry: int) -> float:
        delay = min(self.max_delay_s, self.base_delay_s * 2**retry)
        return delay / 2 + random.uniform(0, delay / 2)  # jitter spreads out clients that failed together


class OpenAIChatLLM:
    """One model on one endpoint; serves whichever roles are routed to it.

    The SDK's own retries are off (build the client with max_retries=0): this class retries 408/409/429,
    5xx, timeouts and connection errors itself, honouring Retry-After, and only while holding no
    concurrency slot.
    """

    def __init__(
        self,
        model: str,
        client: openai.AsyncOpenAI,
        *,
        semaphore: asyncio.Semaphore | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        seed: int | None = None,
    ) -> None:
        self.model = model
        self.client = client
        self.semaphore = semaphore or asyncio.Semaphore(8)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.retry = retry or RetryPolicy()
        self.prices = prices or PriceTable()
        self.seed = seed  # sent as `seed` (see _first_sample) so sampled answers repeat run to run
        self._samples_asked: dict[str, int] = {}  # per prompt: how many answers were asked for so far
        # Without user:password@: it is written into messages, result.json and the trace.
        self.base_url = str(without_credentials(str(client.base_url))).rstrip("/")
        # Learned from the endpoint: some reject response_format json_schema, some ignore `n`, some
        # refuse `seed` or `logprobs` (_OPTIONAL).
        self.json_schema_supported = True
        self.n_supported = True
        self.refused: set[str] = set()

    async def aclose(self) -> None:
        """Close the HTTP connections (else they stay open until garbage collection)."""
        await self.client.close()

    async def complete(
        self,
        role: Role,
        messages: list[Message],
        *,
        n: int = 1,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> list[Completion]:
        check_role(role)
        started = time.perf_counter()
        temperature = self.temperature if temperature is None else temperature
        first = self._first_sample(messages, n)

        async def one_by_one(start: int, count: int) -> list[tuple[list[_Answer], Usage]]:
            return list(await asyncio.gather(*[self._call(messages, 1, json_schema, temperature, sample=start + i)
                                               for i in range(count)]))

        if n > 1 and not self.n_supported:
            results = await one_by_one(first, n)
        else:
            try:
                answered = await self._call(messages, n, json_schema, temperature, sample=first)
            except (LLMError, openai.BadRequestError) as exc:
                if n == 1 or not _is_bad_request(exc):
                    raise
                # Some servers (llama.cpp) reject n > 1 outright: ask n times instead, from now on.
                log.info("endpoint %s rejected n=%d (%s); using separate calls", self.base_url, n, _one_line(exc))
                self.n_supported = False
                results = await one_by_one(first, n)
            else:
                results, got = [answered], len(answered[0])
                if got < n:
                    # The endpoint ignored `n` (llama.cpp, some proxies): get the rest one call at a time.
                    self.n_supported = False
                    log.info("endpoint %s returned %d of %d choices; using separate calls", self.base_url, got, n)
                    results += await one_by_one(first + got, n - got)
        latency = time.perf_counter() - started
        completions: list[Completion] = []
        fields = enum_fields(json_schema)
        for answers, usage in results:
            for index, (text, tokens) in enumerate(answers[: n - len(completions)]):
                call_usage = usage if index == 0 else Usage()
                data = extract_json(text) if json_schema is not None else None
                probs = enum_probabilities(tokens, fields) if tokens and fields else None
                completions.append(Completion(text=text, role=role, model=self.model, usage=call_usage, data=data,
                                              choice_probs=probs or None))
        if not completions:
            raise LLMError(f"the endpoint at {self.base_url} returned no choices for {self.model!r}")
        completions[0].usage.latency_s = latency
        return completions

    def _first_sample(self, messages: list[Message], n: int) -> int:
        """How many answers this prompt was asked for before: sample i of this call is seeded
        seed + first + i, so a prompt asked again (a retry after unparseable answers) gets new answers
        while a whole run still repeats."""
        key = prompt_hash(messages)
        first = self._samples_asked.get(key, 0)
        self._samples_asked[key] = first + n
        return first

    async def _call(
        self, messages: list[Message], n: int, json_schema: dict[str, Any] | None, temperature: float | None,
        sample: int = 0,
    ) -> tuple[list[_Answer], Usage]:
        """One API request (with retries): the choices' texts with their token logprobs (when asked
        for: a schema with a field of fixed values) and the request's usage. `sample`: which of a call's
        answers this request is for (its seed is seed + sample)."""
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if extra_body := EXTRA_BODY.get():
            request["extra_body"] = extra_body
        if n > 1:
            request["n"] = n
        if self.seed is not None and "seed" not in self.refused:
            request["seed"] = self.seed + sample
        if temperature is not None:
            request["temperature"] = temperature
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        if enum_fields(json_schema) and "logprobs" not in self.refused:
            request["logprobs"], request["top_logprobs"] = True, TOP_LOGPROBS
        if json_schema is not None and self.json_schema_supported:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(json_schema), "schema": json_schema},
            }
            try:
                response = await self._create_with_retries(request)
            except OutputNotInFormat as exc:
                # This answer only: ask for the JSON in the prompt instead; the parser reads plain text.
                log.info(
                    "endpoint %s could not produce the schema's format (%s); asking in plain text", self.base_url, exc
                )
                self.json_schema_supported = False
                try:
                    return await self._call(messages, n, json_schema, temperature, sample)
                finally:
                    self.json_schema_supported = True
            except openai.BadRequestError as exc:
                # Many OpenAI-compatible servers reject json_schema; ask in the prompt instead from now on.
                log.info("endpoint %s rejected response_format (%s); trying plain text", self.base_url, _one_line(exc))
                self.json_schema_supported = False
                try:
                    return await self._call(messages, n, json_schema, temperature, sample)
                except Exception:
                    self.json_schema_supported = True  # the 400 was about something else
                    raise
        else:
            if json_schema is not None:
                request["messages"] = _with_schema_instruction(messages, json_schema)
            try:
                response = await self._create_with_retries(request)
            except openai.BadRequestError as exc:
                raise LLMError(
                    f"the endpoint at {self.base_url} rejected the request for {self.model!r}: {_one_line(exc)}"
                ) from exc
        choices = self._choices(response)
        texts = [choice.message.content or "" for choice in choices]
        return [(text, _token_logprobs(choice)) for text, choice in zip(texts, choices)], \
            self._usage(response, request["messages"], texts)

    def _choices(self, response: Any) -> list[Any]:
        """The completion's choices. An answer that is no completion (a web server or a login proxy at
        the base URL answers 200 with an HTML page) is a wrong base URL: ConfigError saying so."""
        choices = getattr(response, "choices", None)
        if isinstance(choices, list):
            return choices
        if isinstance(response, str):  # the SDK hands back the body as text when it is not JSON
            title = re.search(r"<title[^>]*>([^<]*)</title>", response, re.IGNORECASE)
            what = (f"an HTML page ({title.group(1).strip()!r})" if title else "an HTML page") if re.search(
                r"<(!doctype|html|head|body|title)\b", response[:2000], re.IGNORECASE) else "text that is not JSON"
        else:
            what = "JSON that is not a chat completion (no choices)"
        raise ConfigError(f"the endpoint at {self.base_url} answered {what} instead of a chat completion for "
                          f"{self.model!r}: set --base-url / OPENAI_BASE_URL to the API's URL (it usually ends in /v1)")

    def _usage(self, response: Any, messages: list[Message], texts: list[str]) -> Usage:
        if response.usage is not None:
            prompt_tokens = response.usage.prompt_tokens or 0
            completion_tokens = response.usage.completion_tokens or 0
            details = response.usage.prompt_tokens_details
            cached_tokens = (details.cached_tokens or 0) if details is not None else 0
        else:
            # Some servers omit usage; count locally (pictures by OpenAI's formula) so budgets still bind.
            prompt_tokens = count_prompt_tokens(messages)
            completion_tokens = sum(count_tokens(t) for t in texts)
            cached_tokens = 0
        cost = self.prices.cost_usd(self.model, prompt_tokens, completion_tokens, cached_tokens)
        return Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            cost_usd=cost or 0.0,
            unpriced_calls=1 if cost is None else 0,
        )

    async def _create_with_retries(self, request: dict[str, Any]) -> Any:
        while True:
            try:
                return await self._create(request)
            except openai.BadRequestError as exc:
                named = [name for name, keys in _OPTIONAL.items() if keys[0] in request and name in str(exc).lower()]
                if not named:
                    raise
                log.info("endpoint %s rejected %s (%s); not sending it", self.base_url, named[0], _one_line(exc))
                self.refused.add(named[0])
                request = {k: v for k, v in request.items() if k not in _OPTIONAL[named[0]]}

    async def _create(self, request: dict[str, Any]) -> Any:
        retry = 0
        while True:
            try:
                async with self.semaphore:
                    return await self.client.chat.completions.create(**request)
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                if retry >= self.retry.max_retries:
                    raise self._unreachable(exc, retry + 1) from exc
                delay = self.retry.backoff_s(retry)
            except openai.APIStatusError as exc:
                refusal = _NO_IMAGES.get(exc.status_code)
                if refusal is not None and refusal.search(str(exc)) and image_urls(request["messages"]):
                    raise ConfigError(
                        f"the model at {self.base_url} ({self.model!r}) does not take images; drop --vision or use "
                        f"a multimodal model (it answered {exc.status_code}: {_server_message(exc)[:160]})"
                    ) from exc
                if exc.status_code in (401, 403):
                    raise ConfigError(
                        f"the endpoint at {self.base_url} rejected the API key ({exc.status_code}): "
                        "set OPENAI_API_KEY (or FORETHOUGHT_<ROLE>_API_KEY) to a valid key for it"
                    ) from exc
                if exc.status_code == 404:
                    raise ConfigError(
                        f"model {self.model!r} not found at {self.base_url} (404): check the model name "
                        "and that the base URL ends in /v1"
                    ) from exc
                if exc.status_code not in _RETRY_STATUSES and exc.status_code < 500:
                    raise
                if exc.status_code == 500 and "does not match the expected" in str(exc):
                    raise OutputNotInFormat(f"the endpoint at {self.base_url}: {_one_line(exc)}") from exc
                if retry >= self.retry.max_retries:
                    raise LLMError(
                        f"the endpoint at {self.base_url} answered {exc.status_code} for {self.model!r} "
                        f"{retry + 1} times: {_one_line(exc)}"
                    ) from exc
                asked_s = _retry_after_s(exc.response.headers)
                delay = self.retry.backoff_s(retry) if asked_s is None else min(asked_s, self.retry.max_delay_s)
            log.info("retrying %s in %.2fs (retry %d)", self.base_url, delay, retry + 1)
            await asyncio.sleep(delay)
            retry += 1

    def _unreachable(self, exc: openai.APIConnectionError, attempts: int) -> EndpointUnreachable:
        if isinstance(exc, openai.APITimeoutError):
            what = f"did not answer within {self.client.timeout}s"
        else:
            cause = exc.__cause__ or exc
            what = f"could not be reached ({_one_line(cause) or type(cause).__name__})"
        return EndpointUnreachable(
            f"the model endpoint {self.base_url} {what} after {attempts} attempts: check that the server is "
            "running and the base URL (--base-url / OPENAI_BASE_URL) is right"
        )


_Answer = tuple[str, list[TokenLogprobs]]  # a choice's text and its tokens' logprobs ([] when not asked)


def _token_logprobs(choice: Any) -> list[TokenLogprobs]:
    """The choice's tokens, each with its likely alternatives and itself, from `logprobs.content`."""
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    tokens = []
    for item in content:
        likely = [(alt.token, alt.logprob) for alt in (getattr(item, "top_logprobs", None) or [])]
        if item.token not in {token for token, _ in likely}:
            likely.append((item.token, item.logprob))
        tokens.append((item.token, likely))
    return tokens


def _retry_after_s(headers: Any) -> float | None:
    """The server's requested wait: retry-after-ms, or Retry-After in seconds or as an HTTP date."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _with_schema_instruction(messages: list[Message], json_schema: dict[str, Any]) -> list[Message]:
    """The messages with an instruction to answer as JSON at the end of the last one, so the prompt's
    start (shared by the roles of a step, see world_model/templates.py) stays the same."""
    instruction = "Reply with only a JSON object that matches this JSON schema:\n" + json.dumps(json_schema)
    if not messages:
        return [{"role": "user", "content": instruction}]
    content = messages[-1]["content"]
    if isinstance(content, list):  # text and pictures: the instruction is a text part after them
        return [*messages[:-1], {**messages[-1], "content": [*content, text_part(f"\n\n{instruction}")]}]
    return [*messages[:-1], {**messages[-1], "content": f"{content}\n\n{instruction}"}]


def _schema_name(json_schema: dict[str, Any]) -> str:
    """The schema's title as the API's json_schema name (letters, digits, _ and - only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(json_schema.get("title") or "answer"))[:64]


def _is_bad_request(exc: BaseException) -> bool:
    return isinstance(exc, openai.BadRequestError) or isinstance(exc.__cause__, openai.BadRequestError)


def _server_message(exc: openai.APIStatusError) -> str:
    """What the server said, without the SDK's wrapping (its error object's `message`, when it has one)."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(message).split()) if message else _one_line(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
