"""The local server decodes a burst of calls side by side, each slot starting from a copy of the page
prefix the last call computed (agent/llm/local_model.py: SlotSharing)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.llm.local_model import SlotSharing, SlotSharingLLM
from agent.llm.openai_client import EXTRA_BODY, OpenAIChatLLM
from agent.llm.protocol import Completion
from agent.llm.settings import Settings, build_llm


class FakeLLM:
    """Records which slot each call was sent to (the id_slot the request would carry)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def complete(self, role: Any, messages: list[dict[str, str]], **_: Any) -> list[Completion]:
        extra = EXTRA_BODY.get() or {}
        self.log.append(f"{messages[0]['content']}@{extra.get('id_slot')}")
        await asyncio.sleep(0.05)
        return [Completion(text="{}", role=role, model="fake")]


class RecordingSharing(SlotSharing):
    def __init__(self, log: list[str], parallel: int = 4, fail: bool = False) -> None:
        super().__init__("http://127.0.0.1:9", parallel)
        self.log, self.fail = log, fail

    async def _share(self, prompts: list[list[dict[str, str]]], source: int, targets: list[int]) -> None:
        if self.fail:
            raise ConnectionError("server gone")
        self.log.append(f"copy {source}->{targets}")


def caller(llm: SlotSharingLLM) -> Any:
    return lambda name: llm.complete("world_model", [{"role": "user", "content": name}])


async def test_each_call_of_a_burst_gets_its_own_slot_holding_a_copy_of_the_page() -> None:
    log: list[str] = []
    call = caller(SlotSharingLLM(FakeLLM(log), RecordingSharing(log)))
    await asyncio.gather(call("a"), call("b"), call("c"))
    assert log[0] == "copy 0->[1, 2]"  # before any call starts
    assert sorted(log[1:]) == ["a@0", "b@1", "c@2"]

    log.clear()
    await call("d")  # a lone call: the home slot, nothing to copy
    assert log == ["d@0"]


async def test_a_call_that_comes_while_a_burst_runs_is_left_to_the_server() -> None:
    log: list[str] = []
    call = caller(SlotSharingLLM(FakeLLM(log), RecordingSharing(log)))
    first = asyncio.ensure_future(asyncio.gather(call("a"), call("b")))
    await asyncio.sleep(0.03)
    await call("late")
    await first
    assert "late@None" in log and {"a@0", "b@1"} <= set(log)


async def test_a_burst_larger_than_the_slots_and_a_failed_copy_still_answer_every_call() -> None:
    log: list[str] = []
    call = caller(SlotSharingLLM(FakeLLM(log), RecordingSharing(log, parallel=2, fail=True)))
    answers = await asyncio.gather(*(call(name) for name in "abc"))
    assert all(answer[0].text == "{}" for answer in answers)
    assert sorted(log) == ["a@0", "b@1", "c@None"]


PAGE = "\n".join(f"[e{i}] button 'Product {i} in the list of things to buy'" for i in range(80))


def page_messages(action: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You predict what a web page shows after an action."},
            {"role": "user", "content": f"Page:\n{PAGE}\n\nAction: {action}\nWhat appears?"}]


@pytest.mark.slow
async def test_every_call_of_a_burst_starts_from_the_cached_page_prefix() -> None:
    """With the real llama.cpp server (the smallest local model): after one call on a page, three
    concurrent calls on the same page each compute only their own few tokens, not the page again."""
    llm = build_llm(Settings())  # nothing configured: the default local model
    client = llm.clients["world_model"]
    assert isinstance(client, SlotSharingLLM) and isinstance(client.llm, OpenAIChatLLM)
    try:
        [first] = await client.complete("world_model", page_messages("click('e1')"))
        assert first.usage.prompt_tokens > 1000
        burst = await asyncio.gather(*(client.complete("world_model", page_messages(a))
                                       for a in ("click('e7')", "click('e42')", "fill('e3', 'x')")))
    finally:
        await llm.aclose()
    for [answer] in burst:
        uncached = answer.usage.prompt_tokens - answer.usage.cached_tokens
        assert uncached < 40, answer.usage  # the action and the closing words, not the 1,600-token page
