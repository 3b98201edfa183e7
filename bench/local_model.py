"""Reactive and dreamer steps with the local models (llama.cpp on this machine's CPU).

For each model, on a local shop-like page through the real openai client and llama.cpp's server: reactive
steps, then dreamer steps (K=3 candidates, horizon 1, m=1 verifier sample), in one run. Prints per step:
seconds, prompt and generated tokens per second (the server's /metrics), and the share of prompt tokens
served from cache for the simulation, scoring and proposal calls; then per model the median reactive and
dreamer step and their ratio (bar: dreamer / reactive <= 2.5 on qwen2.5-coder-1.5b; goal 1.5), and the
median cached share (bar >= 0.5 for simulations and scores).

    python bench/local_model.py [--models local:qwen2.5-coder-1.5b,...] [--steps 4]
                                [--server threads=2,batch_threads=2,flash_attn=on,...] [--sweep] [--quick]

--server sets ServerSettings fields (agent/llm/local_model.py) for the bench's server. --sweep prints
raw prompt and generation speed (one uncached 1,500-token prompt) under several settings instead.
--quick runs 2 steps of each against the fake endpoint (agent/llm/fake_server.py) instead: a smoke test.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import PlannerConfig  # noqa: E402
from agent.llm.fake_server import FakeOpenAIServer  # noqa: E402
from agent.llm.local_model import (  # noqa: E402
    LocalServer,
    ServerSettings,
    SlotSharingLLM,
    shared_server,
    stop_servers,
)
from agent.llm.model_store import model_named  # noqa: E402
from agent.llm.openai_client import OpenAIChatLLM  # noqa: E402
from agent.llm.protocol import Completion, Role, sum_usage  # noqa: E402
from agent.llm.settings import Settings, build_llm  # noqa: E402
from agent.loop import run_task  # noqa: E402
from bench.fake_answers import planner_answers  # noqa: E402
from envs.env import BrowserEnv  # noqa: E402
from envs.tasks import UrlTask  # noqa: E402

BAR = 0.5  # cached share of prompt tokens
RATIO_BAR, RATIO_GOAL = 2.5, 1.5  # dreamer step / reactive step
STRATEGIES = ("reactive", "dreamer")
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


@dataclass
class StepFigures:
    seconds: float
    prompt_rate: float
    gen_rate: float
    calls: int
    cached: dict[str, float | None]  # by label (sim, score, propose): cached share of prompt tokens
    tokens: dict[str, tuple[int, int, int, int]]  # by label: calls, prompt tokens, of them cached, generated


async def bench(model: str, steps: int, server: ServerSettings) -> dict[str, list[StepFigures]]:
    print(f"\n== {model}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    started = time.perf_counter()
    gguf = model_named(model.removeprefix("local:")).path if model.startswith("local:") else None
    if gguf is not None:
        shared_server(gguf, server)  # started here with these settings; build_llm reuses it
    llm = build_llm(Settings(model=model))
    client = llm.clients["policy"]
    inner = client.llm if isinstance(client, SlotSharingLLM) else client
    if not isinstance(inner, OpenAIChatLLM):
        raise SystemExit(f"error: {model} is not served over the OpenAI API; this bench reads its server's /metrics")
    base_url = str(inner.client.base_url).rstrip("/")
    print(f"server {server}; ready in {time.perf_counter() - started:.1f} s")
    try:
        return {strategy: await measure(llm, strategy, steps, lambda: server_metrics(base_url))
                for strategy in STRATEGIES}
    finally:
        await llm.aclose()
        stop_servers()


async def quick(steps: int) -> None:
    """The same steps against the fake endpoint (agent/llm/fake_server.py): seconds, offline, for CI.
    It has no prefix cache and no /metrics, so its figures say only that the bench still runs."""
    print("quick: the fake endpoint instead of the local model (no prefix cache, no /metrics)")
    with FakeOpenAIServer(planner_answers(K, role="button")) as fake:
        llm = build_llm(Settings(model=f"openai:{fake.model}", base_url=fake.base_url, api_key="quick"))
        try:
            report("fake", {strategy: await measure(llm, strategy, steps, dict) for strategy in STRATEGIES})
        finally:
            await llm.aclose()


async def measure(llm: Any, strategy: str, steps: int, metrics: Callable[[], dict[str, float]]) -> list[StepFigures]:
    """Run `steps` steps of `strategy` with `llm` (the task again if it ends sooner); each step's figures."""
    log = CallLog(llm)
    figures: list[StepFigures] = []

    def mark() -> tuple[float, int, dict[str, float]]:  # at a step's end: time, calls so far, server counters
        return time.perf_counter(), len(log.calls), metrics()

    config = PlannerConfig(strategy=strategy, k=K, horizon=HORIZON, samples=SAMPLES, max_steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "shop.html"
        page.write_text(PAGE, encoding="utf-8")
        async with BrowserEnv() as env:
            for attempt in range(steps):
                if len(figures) >= steps:
                    break
                marks = [mark()]
                await run_task(UrlTask("bench", str(page), GOAL), log, env, config, Path(tmp) / f"runs{attempt}",
                               on_step=lambda _: marks.append(mark()), screenshots=False)  # noqa: B023 (awaited here)
                figures += [step_figures(log, *pair) for pair in zip(marks, marks[1:])]
    print(f"{strategy}: {log.topped_up} proposals topped up to K distinct actions")
    return figures[:steps]


def step_figures(log: CallLog, start: tuple[float, int, dict[str, float]],
                 end: tuple[float, int, dict[str, float]]) -> StepFigures:
    (t0, c0, m0), (t1, c1, m1) = start, end
    by_role: dict[str, list[Any]] = defaultdict(list)
    for role, usage in log.calls[c0:c1]:
        by_role[role].append(usage)
    cached: dict[str, float | None] = {}
    tokens: dict[str, tuple[int, int, int, int]] = {}
    for role, label in (("world_model", "sim"), ("verifier", "score"), ("policy", "propose")):
        total = sum_usage(by_role[role])
        cached[label] = total.cached_tokens / total.prompt_tokens if total.prompt_tokens else None
        tokens[label] = (len(by_role[role]), total.prompt_tokens, total.cached_tokens, total.completion_tokens)
    return StepFigures(t1 - t0, _rate(m0, m1, "prompt_tokens_total", "prompt_seconds_total"),
                       _rate(m0, m1, "tokens_predicted_total", "tokens_predicted_seconds_total"), c1 - c0, cached,
                       tokens)


def report(model: str, runs: dict[str, list[StepFigures]]) -> bool:
    """Print the steps and the model's medians; whether the bars are met (None-safe on a short run)."""
    print(f"{'strategy':>9} {'step':>4} {'seconds':>8} {'prompt tok/s':>13} {'gen tok/s':>10} {'calls':>6} "
          f"{'cached: sim':>12} {'score':>6} {'propose':>8}")
    for strategy, figures in runs.items():
        for i, f in enumerate(figures, 1):
            print(f"{strategy:>9} {i:>4} {f.seconds:8.1f} {f.prompt_rate:13.1f} {f.gen_rate:10.1f} {f.calls:>6} "
                  + " ".join(f"{'-' if f.cached[k] is None else f'{f.cached[k]:.2f}':>{w}}"
                             for k, w in (("sim", 12), ("score", 6), ("propose", 8))))
    for strategy, figures in runs.items():
        for label in ("propose", "sim", "score"):
            calls, prompt, cached_tokens, generated = (sum(f.tokens[label][i] for f in figures) for i in range(4))
            if calls:
                print(f"{strategy:>9} {label:>8}: {calls / len(figures):.1f} calls a step; per call "
                      f"{prompt / calls:.0f} prompt tokens ({cached_tokens / calls:.0f} cached), "
                      f"{generated / calls:.0f} generated")
    median = {s: statistics.median(f.seconds for f in figures) if figures else float("nan")
              for s, figures in runs.items()}
    ratio = median["dreamer"] / median["reactive"] if median["reactive"] else float("nan")
    shares = {label: [share for f in runs["dreamer"] if (share := f.cached[label]) is not None]
              for label in ("sim", "score")}
    cached = {label: statistics.median(v) if v else 0.0 for label, v in shares.items()}
    ratio_ok = ratio <= RATIO_BAR
    cache_ok = all(v >= BAR for v in cached.values())
    print(f"{model}: median step reactive {median['reactive']:.1f} s, dreamer {median['dreamer']:.1f} s; "
          f"dreamer / reactive = {ratio:.2f} (bar <= {RATIO_BAR}, goal <= {RATIO_GOAL}): "
          f"{'ok' if ratio_ok else 'ABOVE BAR'}; dreamer's median cached share: sim {cached['sim']:.2f}, "
          f"score {cached['score']:.2f} (bar >= {BAR}): {'ok' if cache_ok else 'BELOW BAR'}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return ratio_ok and cache_ok


def _rate(before: dict[str, float], after: dict[str, float], tokens: str, seconds: str) -> float:
    spent = after.get(seconds, 0.0) - before.get(seconds, 0.0)
    return (after.get(tokens, 0.0) - before.get(tokens, 0.0)) / spent if spent > 0 else 0.0


SWEEP = ["threads=1,batch_threads=1", "threads=1,batch_threads=2", "threads=2,batch_threads=2",
         "threads=2,batch_threads=2,flash_attn=on", "threads=2,batch_threads=2,kv_type=q8_0,flash_attn=on",
         "threads=2,batch_threads=2,n_ubatch=256", "threads=2,batch_threads=2,n_ubatch=1024,n_batch=2048"]


async def sweep(model: str) -> None:
    """Raw serving speed under each of SWEEP's settings: one uncached 1,500-token prompt, 64 tokens out."""
    import httpx

    gguf = model_named(model.removeprefix("local:")).path
    print(f"{'settings':<58} {'prompt tok/s':>13} {'gen tok/s':>10}  load")
    for number, text in enumerate(SWEEP):
        server = LocalServer(gguf, server_settings(text))
        root = server.start().removesuffix("/v1")
        rows = "\n".join(f"[e{i}] button 'Item {i + 1000 * number} of the catalogue'" for i in range(150))
        async with httpx.AsyncClient(timeout=900) as client:
            reply = await client.post(f"{root}/v1/chat/completions", json={
                "messages": [{"role": "user", "content": f"{rows}\nWhich item is first?"}],
                "max_tokens": 64, "temperature": 0, "ignore_eos": True})
        server.stop()
        timings = reply.json()["timings"]
        print(f"{text:<58} {timings['prompt_per_second']:13.1f} {timings['predicted_per_second']:10.1f}  "
              f"{os.getloadavg()[0]:.2f}")


def server_settings(text: str) -> ServerSettings:
    """`threads=2,flash_attn=on` -> ServerSettings (numbers as ints)."""
    fields: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        fields[name.strip()] = int(value) if value.strip().isdigit() else value.strip()
    return ServerSettings(**fields)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="steps per strategy and model (default 4; 2 with --quick)")
    parser.add_argument("--models", default="local:qwen2.5-coder-1.5b", help="model specs, comma-separated")
    parser.add_argument("--server", default="", help="ServerSettings fields, e.g. threads=2,kv_type=q8_0")
    parser.add_argument("--sweep", action="store_true", help="raw prompt and generation speed under several settings")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run against the fake endpoint instead of --models; exits 0 whatever the figures")
    args = parser.parse_args()
    if args.sweep:
        for model in args.models.split(","):
            asyncio.run(sweep(model))
        return 0
    if args.quick:
        asyncio.run(quick(args.steps or 2))
        return 0
    settings = server_settings(args.server)
    passed = [report(model, asyncio.run(bench(model, args.steps or 4, settings))) for model in args.models.split(",")]
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
