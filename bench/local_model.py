"""Dreamer steps with the local model (llama.cpp serving SmolLM2-135M on this machine's CPU).

Runs dreamer (K=3 candidates, horizon 1, m=1 verifier sample) on a local shop-like page through the
real openai client and llama.cpp's server, and prints per step: seconds, prompt and generated tokens
per second (from the server's /metrics), and the fraction of prompt tokens served from the prefix
cache, for the simulation and the scoring calls (bar: >= 0.5 for both, on the median step).

    python bench/local_model.py [--steps 6] [--model local] [--parallel 1] [--threads 0] [--quick]

--quick runs 3 steps against the fake endpoint (agent/llm/fake_server.py) instead: a smoke test.

Prints the machine's load average too: the figures depend on what else runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import PlannerConfig  # noqa: E402
from agent.llm.fake_server import FakeOpenAIServer  # noqa: E402
from agent.llm.local_model import ServerSettings, default_model, shared_server  # noqa: E402
from agent.llm.openai_client import OpenAIChatLLM  # noqa: E402
from agent.llm.protocol import Completion, Role, sum_usage  # noqa: E402
from agent.llm.settings import Settings, build_llm  # noqa: E402
from agent.loop import run_task  # noqa: E402
from bench.fake_answers import planner_answers  # noqa: E402
from envs.env import BrowserEnv  # noqa: E402
from envs.tasks import UrlTask  # noqa: E402

BAR = 0.5
K, HORIZON, SAMPLES = 3, 1, 1
PRODUCTS = ["Notebook A5 dotted", "Fountain pen, fine nib", "Ink bottle, blue-black", "Desk lamp", "Pencil set",
            "Sketchbook A4", "Paper clips (100)", "Stapler", "Letter tray", "Sticky notes", "Ruler 30 cm",
            "Eraser", "Highlighter set", "Envelope pack", "Postcards"]
PAGE = ("<!doctype html><title>Paper & Ink</title><h1>Paper & Ink</h1><p id=s role=status>Your cart is empty.</p>"
        "<nav><a href='#'>Home</a> <a href='#'>Catalog</a> <a href='#'>Account</a> <input aria-label=Search></nav>"
        + "".join(f"<div><h2>{name}</h2><p>${3 + i * 1.25:.2f} · {40 + i * 7} reviews · in stock</p>"
                  f"<button onclick=\"document.getElementById('s').textContent='{name} added to the cart'\">"
                  f"Add {name} to cart</button></div>" for i, name in enumerate(PRODUCTS)))
GOAL = "Add the desk lamp to the cart."


class CallLog:
    """An LLM wrapper remembering each call's role and usage, in order.

    A 135M model often proposes one action K times, which leaves one candidate and nothing to share;
    so that every step simulates and scores K candidates, the policy's answer is topped up to K
    distinct actions with clicks on other buttons of the page (the bench measures serving, not choice)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.calls: list[tuple[Role, Any]] = []
        self.topped_up = 0  # policy answers that needed it

    async def complete(self, role: Role, messages: list[dict[str, str]], **kwargs: Any) -> list[Completion]:
        answers = await self.llm.complete(role, messages, **kwargs)
        self.calls.append((role, sum_usage(a.usage for a in answers)))
        schema = kwargs.get("json_schema") or {}
        if role == "policy" and schema.get("title") == "candidates" and isinstance(answers[0].data, dict):
            self._top_up(answers[0], messages[-1]["content"])
        return answers

    def _top_up(self, answer: Completion, page: str) -> None:
        items = [c for c in answer.data.get("candidates", []) if isinstance(c, dict)]
        actions = {str(c.get("action")) for c in items}
        spare = [f"click('{i}')" for i in re.findall(r"\[(e\d+)\] button", page) if f"click('{i}')" not in actions]
        if len(actions) < K and spare:
            self.topped_up += 1
            items += [{"action": a, "reason": "added by the bench"} for a in spare[: K - len(actions)]]
            answer.data = {"candidates": items}
            answer.text = json.dumps(answer.data)


def server_metrics(base_url: str) -> dict[str, float]:
    """llama.cpp's Prometheus counters (prompt tokens processed, seconds, tokens generated, seconds)."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^llamacpp:(\w+) ([0-9.eE+-]+)$", text, re.MULTILINE)}


async def bench(model: str, steps: int, server: ServerSettings) -> bool:
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    started = time.perf_counter()
    if model == "local" and server != ServerSettings():
        shared_server(default_model().path, server)  # started here with these settings; build_llm reuses it
    print(f"server: {server}")
    llm = build_llm(Settings(model=model))
    client = llm.clients["policy"]
    if not isinstance(client, OpenAIChatLLM):
        raise SystemExit(f"error: {model} is not served over the OpenAI API; this bench reads its server's /metrics")
    base_url = str(client.client.base_url).rstrip("/")
    print(f"model {model} ({client.model}) served at {base_url}; ready in {time.perf_counter() - started:.1f} s")
    try:
        return await measure(llm, steps, lambda: server_metrics(base_url))
    finally:
        await llm.aclose()


async def quick(steps: int) -> None:
    """The same steps against the fake endpoint (agent/llm/fake_server.py): seconds, offline, for CI.
    It has no prefix cache and no /metrics, so its figures say only that the bench still runs."""
    print("quick: the fake endpoint instead of the local model (no prefix cache, no /metrics)")
    with FakeOpenAIServer(planner_answers(K, role="button")) as fake:
        llm = build_llm(Settings(model=f"openai:{fake.model}", base_url=fake.base_url, api_key="quick"))
        try:
            await measure(llm, steps, dict)
        finally:
            await llm.aclose()


async def measure(llm: Any, steps: int, metrics: Callable[[], dict[str, float]]) -> bool:
    """Run the dreamer steps with `llm` and print their figures; `metrics` reads the server's counters."""
    log = CallLog(llm)
    marks: list[tuple[float, int, dict[str, float]]] = []  # per step end: time, calls so far, server counters

    def on_step(_: str) -> None:
        marks.append((time.perf_counter(), len(log.calls), metrics()))

    config = PlannerConfig(strategy="dreamer", k=K, horizon=HORIZON, samples=SAMPLES, max_steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "shop.html"
        page.write_text(PAGE, encoding="utf-8")
        async with BrowserEnv() as env:
            marks.append((time.perf_counter(), 0, metrics()))
            result = await run_task(UrlTask("bench", str(page), GOAL), log, env, config, Path(tmp) / "runs",
                                    on_step=on_step, screenshots=False)
    print(f"K={K}, H={HORIZON}, m={SAMPLES}; {result.steps} steps, stop reason {result.stop_reason}; "
          f"cached prompt tokens in the run's totals: {result.usage['total']['cached_tokens']} "
          f"of {result.usage['total']['prompt_tokens']}; {log.topped_up} proposals topped up to K distinct actions")
    print(f"{'step':>4} {'seconds':>8} {'prompt tok/s':>13} {'gen tok/s':>10} {'calls':>6} "
          f"{'cached: sim':>12} {'score':>6} {'propose':>8}")
    fractions: dict[str, list[float]] = defaultdict(list)
    for i, ((t0, c0, m0), (t1, c1, m1)) in enumerate(zip(marks, marks[1:]), 1):
        by_role: dict[str, list[Any]] = defaultdict(list)
        for role, usage in log.calls[c0:c1]:
            by_role[role].append(usage)
        row: dict[str, float | None] = {}
        for role, label in (("world_model", "sim"), ("verifier", "score"), ("policy", "propose")):
            total = sum_usage(by_role[role])
            fraction = total.cached_tokens / total.prompt_tokens if total.prompt_tokens else None
            row[label] = fraction
            # A step whose candidates collapsed to one (the tiny model repeats itself) has nothing to share.
            if fraction is not None and len(by_role[role]) > 1:
                fractions[label].append(fraction)
        prompt_rate = _rate(m0, m1, "prompt_tokens_total", "prompt_seconds_total")
        gen_rate = _rate(m0, m1, "tokens_predicted_total", "tokens_predicted_seconds_total")
        print(f"{i:>4} {t1 - t0:8.1f} {prompt_rate:13.1f} {gen_rate:10.1f} {c1 - c0:>6} "
              + " ".join(f"{'-' if row[k] is None else f'{row[k]:.2f}':>{w}}" for k, w in
                         (("sim", 12), ("score", 6), ("propose", 8))))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    medians = {label: statistics.median(values) for label, values in fractions.items() if values}
    passed = all(medians.get(label, 0.0) >= BAR for label in ("sim", "score"))
    print(f"median cached fraction over the {len(fractions['sim'])} steps with more than one candidate: "
          f"sim {medians.get('sim', 0):.2f}, score {medians.get('score', 0):.2f} "
          f"(bar >= {BAR}): {'ok' if passed else 'BELOW BAR'}")
    return passed


def _rate(before: dict[str, float], after: dict[str, float], tokens: str, seconds: str) -> float:
    spent = after.get(seconds, 0.0) - before.get(seconds, 0.0)
    return (after.get(tokens, 0.0) - before.get(tokens, 0.0)) / spent if spent > 0 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="real steps to run at most (default 6; 3 with --quick)")
    parser.add_argument("--model", default="local", help="model spec (default: local)")
    parser.add_argument("--parallel", type=int, default=ServerSettings.parallel, help="server slots (with local)")
    parser.add_argument("--threads", type=int, default=0, help="server threads (with local; 0: cores - 1)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run against the fake endpoint instead of --model; exits 0 whatever the figures")
    args = parser.parse_args()
    if args.quick:
        asyncio.run(quick(args.steps or 3))
        return 0
    settings = ServerSettings(parallel=args.parallel, threads=args.threads)
    return 0 if asyncio.run(bench(args.model, args.steps or 6, settings)) else 1


if __name__ == "__main__":
    sys.exit(main())
