"""How fast and how small our observation is, against Playwright's plain `page.aria_snapshot()`.

    python bench/observation.py [--reps 15] [--quick] [--gguf MODEL.gguf]

Pages: the 2,000-element shop back office (tests/pages/big_page.py) and five MiniWoB++ tasks.
Bars (issue #2): observe() time / aria_snapshot() time <= 1.5 on every page (medians of interleaved
repetitions), and render_text(obs) tokens / raw HTML tokens <= 0.15 on the 2,000-element page.
Bar (issue #14): the untrimmed render_text spends <= 20 tokens per interactive element on the
2,000-element page (goal <= 10), printed beside the line format it replaced, in one run. Tokens are
counted with envs/tokens.py (tiktoken's cl100k_base), and with --gguf also by that model's own
tokenizer (llama.cpp's /tokenize, through xllamacpp).
Also times render_text on a 20,000-element page. --quick: 1 repetition, exit 0 whatever the bars
(a smoke test, seconds).
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import miniwob  # noqa: E402
from playwright.async_api import Page  # noqa: E402

from envs.browser import BrowserSession  # noqa: E402
from envs.observation import ObservationOptions, observe  # noqa: E402
from envs.rendering import render_text  # noqa: E402
from envs.tokens import count_tokens  # noqa: E402
from envs.types import Element, Observation  # noqa: E402
from tests.pages.big_page import make_big_page  # noqa: E402

MINIWOB_HTML = Path(miniwob.__file__).parent / "html" / "miniwob"
MINIWOB_TASKS = ["click-button", "click-checkboxes", "choose-list", "login-user", "social-media"]
TIME_BAR = 1.5
TOKEN_BAR = 0.15
PER_ELEMENT_BAR, PER_ELEMENT_GOAL = 20.0, 10.0
FULL_REPS, QUICK_REPS = 15, 1


def active_page(session: BrowserSession) -> Page:
    if session.page is None:
        raise RuntimeError("the browser session has no open tab")
    return session.page


async def start_miniwob_episode(page: Page, task: str, seed: int = 1) -> str:
    await page.goto((MINIWOB_HTML / f"{task}.html").as_uri())
    await page.wait_for_selector("#sync-task-cover")
    await page.evaluate("() => core.endEpisode(0)")
    await page.evaluate(f"() => Math.seedrandom({seed})")
    await page.evaluate('() => core.setDataMode("train")')
    await page.evaluate("() => { core.EPISODE_MAX_TIME = 3600000; core.startEpisodeReal(); }")
    await page.wait_for_function("() => WOB_TASK_READY")
    return str(await page.evaluate("() => core.getUtterance()"))


async def measure(session: BrowserSession, reps: int) -> dict[str, float]:
    page = active_page(session)
    options = ObservationOptions()
    obs = await observe(session, options)  # warm up: the first run also writes the ids
    await page.aria_snapshot()
    ours, theirs = [], []
    for _ in range(reps):  # interleaved, so machine load hits both alike
        started = time.perf_counter()
        obs = await observe(session, options)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        await page.aria_snapshot()
        theirs.append(time.perf_counter() - started)
    text = render_text(obs)
    html_tokens = count_tokens(await page.content())
    return {
        "elements": len(obs.elements),
        "ids": len(obs.ids()),
        "ours_ms": statistics.median(ours) * 1000,
        "aria_ms": statistics.median(theirs) * 1000,
        "text_tokens": count_tokens(text),
        "full_tokens": count_tokens(render_text(obs, 10**9)),
        "html_tokens": html_tokens,
    }


def previous_text(obs: Observation) -> str:
    """The untrimmed text in the line format render_text used before issue #14: two spaces per
    level, ` (offscreen)` on every off-screen line, role words on every option and text."""
    def line(e: Element) -> str:
        parts = ["  " * e.depth, f"[{e.id}] " if e.id is not None else "", e.role]
        if e.name:
            parts.append(f" '{_one_line(e.name)}'")
        if e.value:
            parts.append(f" value='{_one_line(e.value)}'")
        parts += [f" {state}" for state in e.states]
        parts.append(" (offscreen)" if e.offscreen else "")
        return "".join(parts)

    header = render_text(Observation(url=obs.url, title=obs.title, tabs=obs.tabs, focused_id=obs.focused_id,
                                     last_action_error=obs.last_action_error), 10**9)
    return "\n".join([header] + [line(e) for e in obs.elements])


def _one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", "\\n")


@contextmanager
def gguf_tokenizer(path: Path) -> Iterator[Callable[[str], int]]:
    """A token counter using the tokenizer inside a GGUF file: llama.cpp's server, in this process,
    answers /tokenize (the model is memory-mapped, not run)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = 512  # tokenizing needs no context; keep the KV cache small
    params.n_parallel = 1
    params.verbosity = 0
    server = xllamacpp.Server(params)
    address = server.listening_address

    def count(text: str) -> int:
        request = urllib.request.Request(f"{address}/tokenize", data=json.dumps({"content": text}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return len(json.load(response)["tokens"])

    try:
        yield count
    finally:
        del server


def per_element_table(obs: Observation, gguf: Path | None) -> list[tuple[str, float, float]]:
    """(tokenizer, tokens per interactive element before, after) for the untrimmed text of `obs`."""
    before, after = previous_text(obs), render_text(obs, 10**9)
    ids = len(obs.ids())
    rows = [("cl100k_base (envs/tokens.py)", count_tokens(before) / ids, count_tokens(after) / ids)]
    if gguf is not None:
        with gguf_tokenizer(gguf) as count:
            rows.append((f"{gguf.name} (its own, via llama.cpp)", count(before) / ids, count(after) / ids))
    return rows


async def main(reps: int, gguf: Path | None) -> int:
    results: dict[str, dict[str, float]] = {}
    async with BrowserSession() as session:
        await session.new_context()
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "big_page.html"
            big.write_text(make_big_page(2000), encoding="utf-8")
            await active_page(session).goto(big.as_uri())
            results["big page (2,000)"] = await measure(session, reps)
            big_obs = await observe(session, ObservationOptions())
            for task in MINIWOB_TASKS:
                await start_miniwob_episode(active_page(session), task)
                results[f"miniwob {task}"] = await measure(session, reps)

            huge = Path(tmp) / "huge_page.html"
            huge.write_text(make_big_page(20_000), encoding="utf-8")
            await active_page(session).goto(huge.as_uri())
            started = time.perf_counter()
            huge_obs = await observe(session, ObservationOptions())
            huge_observe_s = time.perf_counter() - started
            started = time.perf_counter()
            huge_text = render_text(huge_obs)
            huge_render_s = time.perf_counter() - started

    print(f"{'page':<26}{'elements':>9}{'ids':>7}{'observe ms':>12}{'aria ms':>9}{'time x':>8}"
          f"{'text tok':>10}{'html tok':>10}{'text/html':>10}{'(untrimmed)':>12}")
    ratios = []
    for name, r in results.items():
        ratio = r["ours_ms"] / r["aria_ms"]
        ratios.append(ratio)
        print(f"{name:<26}{r['elements']:>9}{r['ids']:>7}{r['ours_ms']:>12.1f}{r['aria_ms']:>9.1f}{ratio:>8.2f}"
              f"{r['text_tokens']:>10}{r['html_tokens']:>10}{r['text_tokens'] / r['html_tokens']:>10.3f}"
              f"{r['full_tokens'] / r['html_tokens']:>12.3f}")
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    big_page = results["big page (2,000)"]
    token_ratio = big_page["text_tokens"] / big_page["html_tokens"]
    time_ok = all(r <= TIME_BAR for r in ratios)
    print(f"\nreps={reps}; geometric mean of time ratios: {geomean:.2f}")
    print(f"bar time  (observe / aria_snapshot <= {TIME_BAR} on every page): {'MET' if time_ok else 'MISSED'}"
          f" (worst {max(ratios):.2f})")
    print(f"bar size  (render_text / raw HTML tokens <= {TOKEN_BAR} on the 2,000-element page): "
          f"{'MET' if token_ratio <= TOKEN_BAR else 'MISSED'} ({token_ratio:.3f})")
    print(f"20,000-element page: {len(huge_obs.elements)} elements, {len(huge_obs.ids())} ids; observe "
          f"{huge_observe_s * 1000:.0f} ms, render_text {huge_render_s * 1000:.0f} ms, "
          f"{count_tokens(huge_text)} tokens")

    table = per_element_table(big_obs, gguf)
    print(f"\nuntrimmed render_text on the 2,000-element page ({len(big_obs.ids())} interactive elements, "
          f"{len(big_obs.elements)} lines), tokens per interactive element:")
    print(f"  {'tokenizer':<52}{'before':>8}{'after':>8}")
    for tokenizer, before, after in table:
        print(f"  {tokenizer:<52}{before:>8.2f}{after:>8.2f}")
    per_element_ok = all(after <= PER_ELEMENT_BAR for _, _, after in table)
    worst = max(after for _, _, after in table)
    print(f"bar tokens/element (untrimmed, <= {PER_ELEMENT_BAR:g} by every tokenizer above): "
          f"{'MET' if per_element_ok else 'MISSED'} (worst {worst:.2f}); goal <= {PER_ELEMENT_GOAL:g}: "
          f"{'MET' if worst <= PER_ELEMENT_GOAL else 'MISSED'}")
    return 0 if time_ok and token_ratio <= TOKEN_BAR and per_element_ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, help=f"repetitions per page, interleaved (default {FULL_REPS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_REPS} repetitions; exits 0 whatever the bars (--reps still overrides)")
    parser.add_argument("--gguf", type=Path, metavar="MODEL.gguf",
                        help="also count tokens with this GGUF model's tokenizer (e.g. a cached qwen2.5-coder)")
    args = parser.parse_args()
    if args.gguf is not None and not args.gguf.is_file():
        parser.error(f"--gguf: no such file: {args.gguf}")
    if args.gguf is not None and importlib.util.find_spec("xllamacpp") is None:
        parser.error("--gguf needs the xllamacpp package (pip install xllamacpp)")
    code = asyncio.run(main(args.reps or (QUICK_REPS if args.quick else FULL_REPS), args.gguf))
    sys.exit(0 if args.quick else code)
