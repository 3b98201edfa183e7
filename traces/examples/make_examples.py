"""Regenerate the example traces in traces/examples/<task-id>/ with the scripted model.

    python traces/examples/make_examples.py

Each example runs the dreamer strategy (2 candidates, 1 imagined step, 1 verifier sample) with the
answers in traces/examples/scripts/<name>.json. Screenshots are left out to keep the examples small.
"""
from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES.parents[1]))  # run from anywhere in a checkout

from agent.config import PlannerConfig  # noqa: E402
from agent.llm.scripted import ScriptedLLM  # noqa: E402
from agent.loop import run_task  # noqa: E402
from envs.env import BrowserEnv  # noqa: E402
from envs.miniwob import MiniWoBTask  # noqa: E402
from envs.tasks import UrlTask  # noqa: E402

CONFIG = PlannerConfig(strategy="dreamer", k=2, horizon=1, samples=1, max_steps=6)


def example_tasks() -> list[tuple[str, Any]]:
    """(script name, task) of every example."""
    return [
        ("demo-order", UrlTask("demo-order", "bundled:demo",
                               "Order 2 notebooks with a Sand cover, then tell me what the status line says.")),
        ("miniwob-click-button", MiniWoBTask("click-button", seed=1)),
        ("miniwob-enter-text", MiniWoBTask("enter-text", seed=1)),
    ]


async def make_examples(out: Path = EXAMPLES) -> list[Path]:
    made = []
    async with BrowserEnv() as env:
        for script, task in example_tasks():
            shutil.rmtree(out / task.id, ignore_errors=True)
            llm = ScriptedLLM.from_file(EXAMPLES / "scripts" / f"{script}.json")
            models = {role: {"model": f"scripted:{script}.json"} for role in ("policy", "world_model", "verifier")}
            result = await run_task(task, llm, env, CONFIG, out, on_step=lambda line: None, models=models,
                                    screenshots=False)
            print(f"{task.id}: {result.stop_reason}, reward {result.reward:g}, {result.steps} steps")
            made.append(out / task.id)
    return made


if __name__ == "__main__":
    asyncio.run(make_examples())
