"""`forethought wm-eval TRACE_DIR...`: score the world model's recorded predictions against what really
happened, or predict again with another model."""
from __future__ import annotations

import argparse
from pathlib import Path

from agent.evaluation.fidelity import format_scores, score_trace
from agent.llm.settings import build_llm, load_settings
from traces.schema import TRACE_FILE
from world_model.world_model import LLMWorldModel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("For every executed action, compare the recorded prediction with what really happened; "
                          "with --model, predict again with that model.")
    parser.add_argument("trace_dirs", metavar="TRACE_DIR", nargs="+")
    parser.add_argument("--model", metavar="SPEC",
                        help="re-predict with this model (openai:MODEL, scripted:FILE, ...)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint for --model")
    parser.set_defaults(handler=wm_eval_command)


async def wm_eval_command(args: argparse.Namespace) -> int:
    world_model, llm = None, None
    try:
        if args.model:
            llm = build_llm(load_settings(model=args.model, base_url=args.base_url), ("world_model",))
            world_model = LLMWorldModel(llm)
        scores = [await score_trace(path, world_model) for path in _task_dirs(args.trace_dirs)]
    finally:
        if llm is not None:
            await llm.aclose()
    print(format_scores(scores, args.model))
    return 0


def _task_dirs(paths: list[str]) -> list[Path]:
    """Task directories as given, with a run directory standing for every task in it."""
    found = []
    for path in map(Path, paths):
        inside = sorted(p.parent for p in path.glob(f"*/{TRACE_FILE}")) if not (path / TRACE_FILE).exists() else []
        found.extend(inside or [path])
    return found
