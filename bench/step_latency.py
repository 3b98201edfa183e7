"""How close a dreamer step gets to its critical path of LLM latency.

Starts a local OpenAI-compatible endpoint that answers every call after a fixed delay D, then runs
dreamer steps (K=5 candidates, horizon 1, m=3 verifier samples) on a local page through the real
openai client. A step's critical path is one proposal + one round of simulations + one round of
scores = 3·D, plus the browser's own time for the action and the next observation (measured in the
same run). Simulations and scores run concurrently, so the measured step should be close to it.

    python bench/step_latency.py [--delay-ms 200] [--steps 10] [--quick]

Bar: the median step (after the first, which opens the connections) <= 1.2x its critical path.
--quick runs 3 steps and exits 0 whatever the ratio: a smoke test that the bench still runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import PlannerConfig  # noqa: E402
from agent.llm.fake_server import FakeOpenAIServer  # noqa: E402
from agent.llm.settings import Settings, build_llm  # noqa: E402
from agent.loop import run_task  # noqa: E402
from bench.fake_answers import UNEXPECTED, planner_answers, request_kind  # noqa: E402
from envs.env import BrowserEnv  # noqa: E402
from envs.tasks import UrlTask  # noqa: E402

BAR = 1.2
FULL_STEPS, QUICK_STEPS = 10, 3
K, HORIZON, SAMPLES = 5, 1, 3
PAGE = "<!doctype html><title>Bench</title><h1>Counters</h1><p id=s>none</p>" + "".join(
    f"<button onclick=\"document.getElementById('s').textContent='{i} clicked'\">Button {i}</button>"
    for i in range(1, 9)
)


def serve(delay_s: float, conn: Any) -> None:
    """The endpoint, in its own process: like a real server, it does not share the agent's GIL."""
    with FakeOpenAIServer(answers=planner_answers(K, role="button"), delay_s=delay_s) as server:
        conn.send(server.base_url)
        conn.recv()  # until the bench is done
        kinds = Counter(request_kind(body) for body in server.chat_requests)
        conn.send((dict(kinds), server.max_in_flight))


class TimedEnv(BrowserEnv):
    """BrowserEnv that remembers how long each real step (action + next observation) took."""

    def __init__(self) -> None:
        super().__init__()
        self.step_seconds: list[float] = []

    async def step(self, action: Any) -> Any:
        started = time.perf_counter()
        result = await super().step(action)
        self.step_seconds.append(time.perf_counter() - started)
        return result


async def bench(delay_s: float, steps: int) -> float | None:
    """Run the steps and print the table; the median ratio, or None when the run did not measure."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "bench.html"
        page.write_text(PAGE, encoding="utf-8")
        conn, server_end = multiprocessing.Pipe()
        server = multiprocessing.Process(target=serve, args=(delay_s, server_end), daemon=True)
        server.start()
        try:
            llm = build_llm(Settings(model="openai:bench-model", base_url=conn.recv(), api_key="bench"))
            config = PlannerConfig(strategy="dreamer", k=K, horizon=HORIZON, samples=SAMPLES, max_steps=steps)
            env = TimedEnv()
            cpu_marks = [time.process_time()]  # this process's CPU time at the end of each step
            try:
                result = await run_task(UrlTask("bench", str(page), "Click every button once."), llm, env, config,
                                        Path(tmp) / "runs", on_step=lambda _: cpu_marks.append(time.process_time()))
            finally:
                await env.close()
            conn.send("done")
            kinds, most_in_flight = conn.recv()
        finally:
            server.join(timeout=5)
        records = [json.loads(line) for line in (Path(tmp) / "runs" / "bench" / "steps.jsonl").open()]

    walls = [r["seconds"] for r in records if r["choice"]]
    calls = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    print(f"D = {delay_s * 1000:.0f} ms; K={K}, H={HORIZON}, m={SAMPLES}; {len(walls)} steps, requests: {calls}; "
          f"at most {most_in_flight} in flight; stop reason {result.stop_reason}")
    if kinds.get(UNEXPECTED):
        print(f"error: {kinds[UNEXPECTED]} request(s) asked for an answer bench/fake_answers.py does not know; "
              "the planner's requests changed", file=sys.stderr)
        return None
    if len(walls) < 2:
        print(f"error: {len(walls)} step(s) chose an action, at least 2 are needed (the first is warm-up); "
              f"the run stopped with {result.stop_reason}: {result.stop_detail or result.error}", file=sys.stderr)
        return None
    # CPU time of this process per step (planner, openai client, LangGraph, Playwright's Python side):
    # on an idle machine the step can exceed its critical path by at most about this much.
    cpus = [b - a for a, b in zip(cpu_marks, cpu_marks[1:])]
    print(f"{'step':>4} {'wall s':>8} {'browser s':>10} {'critical s':>11} {'ratio':>6} {'agent cpu s':>12}")
    ratios, measured = [], []
    for i, (wall, browser, cpu) in enumerate(zip(walls, env.step_seconds, cpus), 1):
        critical = 3 * delay_s + browser
        note = "  (warm-up: first connections; excluded)" if i == 1 else ""
        if i > 1:
            ratios.append(wall / critical)
            measured.append((wall, critical))
        print(f"{i:>4} {wall:8.3f} {browser:10.3f} {critical:11.3f} {wall / critical:6.3f} {cpu:12.3f}{note}")
    median = statistics.median(ratios)
    overall = sum(w for w, _ in measured) / sum(c for _, c in measured)
    print(f"step wall time / critical path: median {median:.3f}, all steps together {overall:.3f}, "
          f"worst {max(ratios):.3f} (bar <= {BAR}, on the median)")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=200.0, help="the endpoint's delay per call (default 200)")
    parser.add_argument("--steps", type=int, help=f"real steps to run (default {FULL_STEPS}; the first is warm-up)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run of {QUICK_STEPS} steps; exits 0 whatever the ratio (the flags above "
                             "still override)")
    args = parser.parse_args()
    steps = args.steps or (QUICK_STEPS if args.quick else FULL_STEPS)
    if steps < 2:
        parser.error("--steps must be at least 2 (the first step is warm-up)")
    median = asyncio.run(bench(args.delay_ms / 1000, steps))
    if median is None:
        return 1
    return 0 if args.quick or median <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
