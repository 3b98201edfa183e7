"""Record the SmolLM2-135M example runs in traces/examples/smollm2/<task-id>/ (a real model, so slow:
about 20 s a step on two CPU cores; the model is fetched into $FORETHOUGHT_CACHE_DIR on first use).

    python traces/examples/make_smollm2_examples.py

The same MiniWoB++ episodes as the scripted examples, with dreamer (2 candidates, 1 imagined step,
1 verifier sample) and at most 3 steps. `forethought wm-eval traces/examples/smollm2` scores their
predictions as poor, the scripted ones (`forethought wm-eval traces/examples`) as right; tests hold
both. They sit one folder down so that the scripted examples' offline replay, which must match every
prompt, does not take them in: a real model's answers cannot be made again after the page rendering
changes, and wm-eval needs only the recorded pages and predictions.
"""
from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
OUT = EXAMPLES / "smollm2"
sys.path.insert(0, str(EXAMPLES.parents[1]))  # run from anywhere in a checkout

from agent.config import PlannerConfig  # noqa: E402
from agent.llm.settings import build_llm, load_settings  # noqa: E402
from agent.loop import run_task  # noqa: E402
from envs.env import BrowserEnv  # noqa: E402
from envs.miniwob import MiniWoBTask  # noqa: E402

CONFIG = PlannerConfig(strategy="dreamer", k=2, horizon=1, samples=1, max_steps=3)
MODEL, SEED = "local:smollm2-135m", 0
TASKS = [MiniWoBTask("click-button", seed=1), MiniWoBTask("enter-text", seed=1)]


async def make_examples(out: Path = OUT) -> list[Path]:
    made = []
    llm = build_llm(load_settings(model=MODEL, seed=SEED))
    try:
        async with BrowserEnv() as env:
            for task in TASKS:  # one at a time: the model has the machine to itself
                shutil.rmtree(out / task.id, ignore_errors=True)
                models = {role: {"model": MODEL, "seed": SEED} for role in ("policy", "world_model", "verifier")}
                result = await run_task(task, llm, env, CONFIG, out, on_step=print, models=models,
                                        screenshots=False)
                print(f"{task.id}: {result.stop_reason}, reward {result.reward:g}, {result.steps} steps")
                made.append(out / task.id)
    finally:
        await llm.aclose()
    return made


if __name__ == "__main__":
    asyncio.run(make_examples())
