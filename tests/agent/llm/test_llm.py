"""The LLM layer: the real openai client against a local fake endpoint, the scripted model,
budgets, pricing and JSON extraction."""
from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import time
from typing import Any

import pytest

from agent.llm.budget import Budget, BudgetExceeded, MeteredLLM, UsageMeter
from agent.llm.fake_server import Failure, FakeOpenAIServer
from agent.llm.openai_client import EndpointUnreachable, LLMError
from agent.llm.parsing import extract_json
from agent.llm.pricing import PriceTable, default_price_table
from agent.llm.protocol import LLM
from agent.llm.scripted import ScriptedLLM, ScriptExhausted
from agent.llm.settings import ConfigError, RoutedLLM, Settings, build_llm
from envs.tokens import count_tokens
from traces.schema import prompt_hash

SCHEMA = {
    "title": "verifier score", "type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("FORETHOUGHT_", "OPENAI_")):
            monkeypatch.delenv(name)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a web agent."}, {"role": "user", "content": text}]


_open_llms: list[RoutedLLM] = []


@pytest.fixture(autouse=True)
async def close_llms():
    yield
    while _open_llms:
        await _open_llms.pop().aclose()


def openai_llm(base_url: str, **settings: Any) -> RoutedLLM:
    """The real wiring: Settings → build_llm → OpenAIChatLLM over openai.AsyncOpenAI, with quick retries.
    Closed after the test, as a run does."""
    defaults: dict[str, Any] = dict(model="openai:gpt-4o", base_url=base_url, api_key="test-key",
                                    retry_base_delay=0.01, request_timeout=5.0, max_retries=3)
    llm = build_llm(Settings(**(defaults | settings)))
    _open_llms.append(llm)
    return llm


# ---------------------------------------------------------------- the openai client over HTTP


async def test_plain_answer_with_usage_and_cost_per_role() -> None:
    with FakeOpenAIServer(answers=["click('e3')", "The page shows the cart.", "0.5"], cached_tokens=4) as server:
        meter = UsageMeter()
        llm = MeteredLLM(openai_llm(server.base_url), meter)
        [policy] = await llm.complete("policy", user("Buy the red shoes"))
        await llm.complete("world_model", user("What happens after click('e3')?"))
        await llm.complete("verifier", user("Score it"), temperature=0.0)

    assert policy.text == "click('e3')" and policy.model == "gpt-4o" and policy.data is None
    first = server.chat_requests[0]
    assert first["model"] == "gpt-4o" and first["messages"] == user("Buy the red shoes")
    assert server.requests[0].headers["authorization"] == "Bearer test-key"
    assert "temperature" not in first and server.chat_requests[2]["temperature"] == 0.0

    prompt_tokens = count_tokens("You are a web agent.") + count_tokens("Buy the red shoes")
    assert (policy.usage.prompt_tokens, policy.usage.completion_tokens, policy.usage.cached_tokens) == (
        prompt_tokens, count_tokens("click('e3')"), 4)
    # gpt-4o list price: $2.50 / 1M input, $1.25 / 1M cached input, $10 / 1M output
    expected = ((prompt_tokens - 4) * 2.50 + 4 * 1.25 + count_tokens("click('e3')") * 10.00) / 1e6
    assert policy.usage.cost_usd == pytest.approx(expected)
    assert policy.usage.latency_s > 0

    by_role = meter.by_role()
    assert by_role["policy"].total_tokens == policy.usage.total_tokens
    assert by_role["verifier"].completion_tokens == count_tokens("0.5")
    assert meter.total().cost_usd == pytest.approx(sum(u.cost_usd for u in by_role.values()))
    assert [c.role for c in meter.calls] == ["policy", "world_model", "verifier"]
    assert meter.calls[0].prompt_hash == prompt_hash(user("Buy the red shoes")) != meter.calls[1].prompt_hash
    assert meter.calls[1].answers == ["The page shows the cart."]


async def test_n_samples_use_the_api_n_and_fall_back_to_separate_calls() -> None:
    with FakeOpenAIServer(answers=["a", "b", "c"]) as server:
        answers = await openai_llm(server.base_url).complete("verifier", user("score"), n=3)
    assert [a.text for a in answers] == ["a", "b", "c"]
    assert len(server.chat_requests) == 1 and server.chat_requests[0]["n"] == 3
    assert sum(a.usage.completion_tokens for a in answers) == sum(count_tokens(t) for t in "abc")

    with FakeOpenAIServer(answers=list("abcdef"), support_n=False) as server:
        llm = openai_llm(server.base_url)
        first = await llm.complete("verifier", user("score"), n=3)
        assert sorted(a.text for a in first) == ["a", "b", "c"]
        assert len(server.chat_requests) == 3  # 1 that ignored n, then 2 more
        second = await llm.complete("verifier", user("score"), n=3)
        assert sorted(a.text for a in second) == ["d", "e", "f"]
        assert len(server.chat_requests) == 6 and all("n" not in r for r in server.chat_requests[3:])

    # llama.cpp's server rejects n > 1 with a 400: the samples are then asked for one at a time.
    with FakeOpenAIServer(answers=list("abcdef"), reject_n=True) as server:
        llm = openai_llm(server.base_url)
        first = await llm.complete("verifier", user("score"), n=3, json_schema=SCHEMA)
        assert sorted(a.text for a in first) == ["a", "b", "c"]
        second = await llm.complete("verifier", user("score"), n=2)
        assert sorted(a.text for a in second) == ["d", "e"]
        # Rejected: n=3 with response_format, then n=3 as plain text; then 3 + 2 single requests.
        assert [r.get("n") for r in server.chat_requests] == [3, 3] + [None] * 5


async def test_a_model_seed_is_sent_with_each_sample_and_dropped_where_rejected() -> None:
    with FakeOpenAIServer(answers=list("abcdef"), support_n=False) as server:
        llm = openai_llm(server.base_url, seed=7)
        await llm.complete("policy", user("act"), n=3)  # one request that ignored n, then two more
        await llm.complete("policy", user("act"))  # asked again (a retry): new seeds, so new answers
        await llm.complete("policy", user("look"))  # another prompt starts at the seed
        seeds = [r["seed"] for r in server.chat_requests]
        assert sorted(seeds[:3]) == [7, 8, 9] and seeds[3:] == [10, 7]
    with FakeOpenAIServer(answers=list("abcdef"), support_n=False) as server:  # the same run again
        llm = openai_llm(server.base_url, seed=7)
        for prompt, n in [("act", 3), ("act", 1), ("look", 1)]:
            await llm.complete("policy", user(prompt), n=n)
        again = [r["seed"] for r in server.chat_requests]
        assert sorted(again[:3]) == sorted(seeds[:3]) and again[3:] == seeds[3:]  # the first 3 ran concurrently
    with FakeOpenAIServer(answers=["a", "b"]) as server:
        await openai_llm(server.base_url).complete("policy", user("act"))
        assert "seed" not in server.chat_requests[0]  # none given: none sent

    with FakeOpenAIServer(answers=["a", "b"], reject_seed=True) as server:
        llm = openai_llm(server.base_url, seed=7)
        [first] = await llm.complete("policy", user("act"))
        [second] = await llm.complete("policy", user("act"))
        assert (first.text, second.text) == ("a", "b")
        assert ["seed" in r for r in server.chat_requests] == [True, False, False]  # learned once


async def test_an_answer_the_server_cannot_fit_to_the_schema_is_asked_again_in_plain_text() -> None:
    # llama.cpp answers 500 when a constrained generation ends outside its grammar; retrying verbatim
    # would fail again, so that one call is asked again with the schema in the prompt.
    failure = Failure(500, message="The model produced output that does not match the expected peg-native format")
    with FakeOpenAIServer(answers=['{"score": 0.5}', '{"score": 1.0}'], failures=[failure]) as server:
        llm = openai_llm(server.base_url)
        [answer] = await llm.complete("verifier", user("score"), json_schema=SCHEMA)
        [again] = await llm.complete("verifier", user("score"), json_schema=SCHEMA)
    assert answer.data == {"score": 0.5} and again.data == {"score": 1.0}
    sent = [("response_format" in r) for r in server.chat_requests]
    assert sent == [True, False, True]  # one failure, its plain-text retry, then the schema again


async def test_json_schema_is_sent_as_response_format() -> None:
    with FakeOpenAIServer(answers=['{"score": 0.5}']) as server:
        [answer] = await openai_llm(server.base_url).complete("verifier", user("score"), json_schema=SCHEMA)
    assert answer.data == {"score": 0.5}
    sent = server.chat_requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == SCHEMA
    assert sent["json_schema"]["name"] == "verifier_score"  # the API allows [A-Za-z0-9_-] only


VERDICT = {"title": "verdict", "type": "object", "required": ["verdict"],
           "properties": {"verdict": {"type": "string", "enum": ["complete", "on track", "wrong"]}}}


async def test_a_schema_with_fixed_values_asks_for_logprobs_and_returns_the_values_odds() -> None:
    odds = {"complete": [("complete", math.log(0.6)), ("on", math.log(0.3)), ("wrong", math.log(0.1))]}
    with FakeOpenAIServer(answers=['{"verdict": "complete"}', '{"score": 1}'], token_odds=odds) as server:
        llm = openai_llm(server.base_url)
        [verdict] = await llm.complete("verifier", user("judge"), json_schema=VERDICT)
        [score] = await llm.complete("verifier", user("score"), json_schema=SCHEMA)
    assert verdict.choice_probs == {"verdict": {"complete": 0.6, "on track": 0.3, "wrong": 0.1}}
    assert score.choice_probs is None  # no field of fixed values: no logprobs asked
    assert [r.get("logprobs") for r in server.chat_requests] == [True, None]


async def test_an_endpoint_that_refuses_logprobs_is_asked_without_them_from_then_on() -> None:
    with FakeOpenAIServer(answers=['{"verdict": "wrong"}'] * 2, reject_logprobs=True) as server:
        llm = openai_llm(server.base_url)
        first = await llm.complete("verifier", user("judge"), json_schema=VERDICT)
        second = await llm.complete("verifier", user("judge again"), json_schema=VERDICT)
    assert [c.data for c in first + second] == [{"verdict": "wrong"}] * 2
    assert first[0].choice_probs is None
    assert ["logprobs" in r for r in server.chat_requests] == [True, False, False]  # refused once, learned
    assert all("response_format" in r for r in server.chat_requests)  # not mistaken for refusing the schema


async def test_rejected_response_format_falls_back_to_prompted_plain_text() -> None:
    answers = ['Sure:\n```json\n{"score": 1.0,}\n```', "I would say {'score': 0}", "no idea"]
    with FakeOpenAIServer(answers=answers, reject_response_format=True) as server:
        llm = openai_llm(server.base_url)
        [first] = await llm.complete("verifier", user("score"), json_schema=SCHEMA)
        [second] = await llm.complete("verifier", user("score"), json_schema=SCHEMA)
        [third] = await llm.complete("verifier", user("score"), json_schema=SCHEMA)
    assert (first.data, second.data, third.data) == ({"score": 1.0}, {"score": 0}, None)
    sent = server.chat_requests
    assert "response_format" in sent[0] and "response_format" not in sent[1]
    assert len(sent) == 4  # the rejection is remembered: later calls go straight to plain text
    # The schema is asked for at the end of the prompt, so its start stays what other calls share.
    asked, last = sent[1]["messages"], user("score")[-1]["content"]
    assert asked[:-1] == user("score")[:-1] and asked[-1]["content"].startswith(last)
    assert asked[-1]["content"].endswith(json.dumps(SCHEMA))


async def test_500_then_success_is_retried() -> None:
    with FakeOpenAIServer(answers=["ok"], failures=[Failure(500), Failure(502)]) as server:
        [answer] = await openai_llm(server.base_url).complete("policy", user("go"))
    assert answer.text == "ok" and len(server.chat_requests) == 3


async def test_429_waits_for_retry_after() -> None:
    with FakeOpenAIServer(answers=["ok"], failures=[Failure(429, retry_after=1)]) as server:
        started = time.perf_counter()
        [answer] = await openai_llm(server.base_url).complete("policy", user("go"))
        elapsed = time.perf_counter() - started
    assert answer.text == "ok" and len(server.chat_requests) == 2
    assert 0.95 <= elapsed < 5  # the server's 1 s, not our 10 ms backoff


async def test_a_timeout_is_retried() -> None:
    with FakeOpenAIServer(answers=["ok"], failures=[Failure(hang_s=5)]) as server:
        started = time.perf_counter()
        [answer] = await openai_llm(server.base_url, request_timeout=0.3).complete("policy", user("go"))
        elapsed = time.perf_counter() - started
    assert answer.text == "ok" and len(server.chat_requests) == 2
    assert elapsed < 4  # gave up on the hung request at the 0.3 s timeout, not when the server let go


async def test_persistent_server_errors_give_up_with_one_line() -> None:
    with FakeOpenAIServer(answers=["ok"], failures=[Failure(503)] * 5) as server:
        with pytest.raises(LLMError) as caught:
            await openai_llm(server.base_url, max_retries=2).complete("policy", user("go"))
    assert len(server.chat_requests) == 3
    assert "answered 503" in str(caught.value) and "\n" not in str(caught.value)


async def test_endpoint_down_is_reported_in_one_line_quickly() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    started = time.perf_counter()
    with pytest.raises(EndpointUnreachable) as caught:
        await openai_llm(base_url, max_retries=2).complete("policy", user("go"))
    message = str(caught.value)
    assert time.perf_counter() - started < 3
    assert base_url in message and "after 3 attempts" in message and "check that the server is running" in message
    assert "\n" not in message


async def test_a_rejected_key_is_a_config_error() -> None:
    with FakeOpenAIServer(answers=["ok"], failures=[Failure(401, message="Incorrect API key")]) as server:
        with pytest.raises(ConfigError, match="rejected the API key.*OPENAI_API_KEY"):
            await openai_llm(server.base_url).complete("policy", user("go"))
    assert len(server.chat_requests) == 1  # not retried


async def test_concurrency_limit_is_shared_across_roles() -> None:
    with FakeOpenAIServer(answers=lambda body: "ok", delay_s=0.1) as server:
        llm = openai_llm(server.base_url, max_concurrency=3, world_model_model="openai:gpt-4o-mini")
        calls = [llm.complete("world_model" if i % 2 else "verifier", user(f"call {i}")) for i in range(10)]
        started = time.perf_counter()
        await asyncio.gather(*calls)
        elapsed = time.perf_counter() - started
    assert len(server.chat_requests) == 10
    assert server.max_in_flight == 3
    assert elapsed >= 0.4  # ceil(10 / 3) rounds of 100 ms


async def test_fake_server_serves_15_concurrent_calls_without_adding_latency() -> None:
    with FakeOpenAIServer(answers=lambda body: "ok", delay_s=0.2) as server:
        llm = openai_llm(server.base_url)

        async def burst() -> float:
            started = time.perf_counter()
            await asyncio.gather(*[llm.complete("verifier", user(f"call {i}")) for i in range(15)])
            return time.perf_counter() - started

        await burst()  # opens the 15 keep-alive connections, as the first step of a run does
        best = min([await burst() for _ in range(2)])  # the best of 2: the machine is shared
    assert server.max_in_flight == 15  # all 15 were at the server at once: nothing queued
    # Loose on purpose (the 2-core machine is shared); bench/step_latency.py measures the overhead.
    assert best < 0.2 * 3


# ---------------------------------------------------------------- the scripted model


async def test_scripted_answers_replay_in_order_per_role() -> None:
    llm = ScriptedLLM({"policy": ["one", "two"], "verifier": ["1.0"]})
    assert isinstance(llm, LLM)
    assert [c.text for c in await llm.complete("policy", user("a"))] == ["one"]
    assert [c.text for c in await llm.complete("verifier", user("a"))] == ["1.0"]
    assert [c.text for c in await llm.complete("policy", user("a"))] == ["two"]
    assert llm.used("policy") == 2 and llm.remaining("policy") == 0


async def test_scripted_when_entries_match_the_last_user_message_first() -> None:
    llm = ScriptedLLM({"world_model": [
        "in order",
        {"when": "click('e1')", "answer": "cart opens"},
        {"when": "click('e2')", "answer": "page scrolls", "repeat": True},
    ]})
    # Concurrent calls arrive in any order; `when` answers follow the prompt, not the arrival.
    results = await asyncio.gather(
        llm.complete("world_model", user("Predict click('e2')")),
        llm.complete("world_model", user("Predict click('e1')")),
        llm.complete("world_model", user("Predict click('e2')")),
    )
    assert [r[0].text for r in results] == ["page scrolls", "cart opens", "page scrolls"]
    # A used-up `when` entry is not reused; the ordered answers take over.
    [again] = await llm.complete("world_model", user("Predict click('e1')"))
    assert again.text == "in order"


async def test_scripted_n_consumes_n_answers_and_exhaustion_names_the_role(tmp_path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"verifier": ["1.0", "0.5", "0"]}))
    llm = ScriptedLLM.from_file(path)
    assert [c.text for c in await llm.complete("verifier", user("score"), n=3)] == ["1.0", "0.5", "0"]
    with pytest.raises(ScriptExhausted) as caught:
        await llm.complete("verifier", user("score"))
    message = str(caught.value)
    assert "role 'verifier' after 3 answers" in message and str(path) in message
    with pytest.raises(ScriptExhausted, match="role 'policy' after 0 answers"):
        await llm.complete("policy", user("go"))


async def test_scripted_usage_json_and_delay() -> None:
    llm = ScriptedLLM({"verifier": ['Reasoning... {"score": 1.0}']}, delay_s=0.05)
    started = time.perf_counter()
    [answer] = await llm.complete("verifier", user("score this"), json_schema=SCHEMA)
    assert time.perf_counter() - started >= 0.05
    assert answer.data == {"score": 1.0}
    assert answer.usage.prompt_tokens == count_tokens("You are a web agent.") + count_tokens("score this")
    assert answer.usage.completion_tokens == count_tokens('Reasoning... {"score": 1.0}')
    assert answer.usage.cost_usd == 0


def test_malformed_scripts_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown role 'planner'"):
        ScriptedLLM({"planner": ["x"]})
    with pytest.raises(ConfigError, match=r"policy\[1\] must be a string"):
        ScriptedLLM({"policy": ["x", 3]})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ScriptedLLM.from_file(bad)


# ---------------------------------------------------------------- budgets


async def test_token_budget_stops_further_calls() -> None:
    script = ScriptedLLM({"policy": ["word " * 30] * 5})
    llm = MeteredLLM(script, UsageMeter(), Budget(max_tokens=60))
    await llm.complete("policy", user("go"))  # ~37 tokens
    await llm.complete("policy", user("go"))  # ~74: over budget after this one
    with pytest.raises(BudgetExceeded) as caught:
        await llm.complete("policy", user("go"))
    used = llm.meter.total().total_tokens
    assert caught.value.reason == f"token budget of 60 spent ({used} used)"
    assert len(llm.meter.calls) == 2 and script.used("policy") == 2  # the refused call never reached the model


async def test_call_budget_counts_calls_not_samples() -> None:
    llm = MeteredLLM(ScriptedLLM({"verifier": ["1"] * 10}), budget=Budget(max_calls=2))
    await llm.complete("verifier", user("a"), n=3)
    await llm.complete("verifier", user("b"), n=3)
    with pytest.raises(BudgetExceeded, match=r"call budget of 2 spent \(2 calls made\)"):
        await llm.complete("verifier", user("c"))


async def test_dollar_budget_with_priced_calls() -> None:
    long_answer = "token " * 200
    with FakeOpenAIServer(answers=lambda body: long_answer) as server:
        llm = MeteredLLM(openai_llm(server.base_url), UsageMeter(), Budget(max_usd=0.003))
        await llm.complete("policy", user("go"))  # ~200 output tokens at $10/1M = $0.002
        await llm.complete("policy", user("go"))
        with pytest.raises(BudgetExceeded, match=r"dollar budget of \$0.003 spent \(\$0.004\d used\)"):
            await llm.complete("policy", user("go"))
    assert len(server.chat_requests) == 2


# ---------------------------------------------------------------- pricing and parsing


def test_price_table_lookup_extension_and_unpriced(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = PriceTable()
    assert table.lookup("gpt-4o-2024-08-06") == table.lookup("gpt-4o") is not None
    assert table.lookup("openai/gpt-4o-mini") == table.lookup("gpt-4o-mini")
    assert table.cost_usd("my-llama", 1000, 1000) is None
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"my-llama": {"input": 1.0, "output": 2.0}}))
    monkeypatch.setenv("FORETHOUGHT_PRICES", str(prices))
    assert default_price_table().cost_usd("my-llama", 1_000_000, 500_000, cached_tokens=0) == pytest.approx(2.0)
    prices.write_text(json.dumps({"my-llama": {"input": "cheap"}}))
    with pytest.raises(ConfigError, match="malformed"):
        default_price_table()


async def test_unknown_models_cost_nothing_and_are_counted_unpriced() -> None:
    with FakeOpenAIServer(answers=["ok"]) as server:
        [answer] = await openai_llm(server.base_url, model="openai:my-local-llama").complete("policy", user("go"))
    assert answer.usage.cost_usd == 0 and answer.usage.unpriced_calls == 1 and answer.usage.prompt_tokens > 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"action": "click(\'e1\')"}', {"action": "click('e1')"}),
        ('Thinking it over.\n```json\n{"score": 0.5, "why": "on track",}\n```\nDone.',
         {"score": 0.5, "why": "on track"}),
        ("The answer is {'score': 1, 'done': True, 'note': None}.", {"score": 1, "done": True, "note": None}),
        ('Set {x} aside; here: {"url": "http://a/{b}", "items": [1, 2,]} ok', {"url": "http://a/{b}", "items": [1, 2]}),
        ('{"outer": {"inner": "it\'s \\"quoted\\""}} trailing', {"outer": {"inner": 'it\'s "quoted"'}}),
        ("no object here, just [1, 2]", None),
        ("{broken: ", None),
    ],
)
def test_extract_json_from_messy_text(text: str, expected: object) -> None:
    assert extract_json(text) == expected
