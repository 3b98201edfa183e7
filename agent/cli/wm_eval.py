"""`forethought wm-eval TRACE_DIR...`: score the world model's recorded predictions against what really
happened, or predict again with another model."""
from __future__ import annotations

import argparse
import json

from agent.cli.common import UserError
from agent.evaluation.fidelity import format_scores, score_trace, scores_data
from agent.llm.settings import build_llm, load_settings
from traces.layout import task_dirs
from world_model.world_model import LLMWorldModel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("For every executed action, compare the changes the recorded prediction claimed with "
                          "the real change of the page (precision, recall and F1, with counts); "
                          "with --model, predict again with that model.")
    parser.add_argument("trace_dirs", metavar="TRACE_OR_RUN_DIR", nargs="+",
                        help="task directories holding trace.jsonl, or run directories (every task in them)")
    parser.add_argument("--model", metavar="SPEC",
                        help="re-predict with this model (openai:MODEL, scripted:FILE, ...)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint for --model")
    parser.add_argument("--json", action="store_true",
                        help="print every step's scores and the totals as one JSON object")
    parser.set_defaults(handler=wm_eval_command)


async def wm_eval_command(args: argparse.Namespace) -> int:
    try:
        paths = [task_dir for path in args.trace_dirs for task_dir in task_dirs(path)]
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    world_model, llm = None, None
    try:
        if args.model:
            llm = build_llm(load_settings(model=args.model, base_url=args.base_url), ("world_model",))
            world_model = LLMWorldModel(llm)
        scores = [await score_trace(path, world_model) for path in paths]
    finally:
        if llm is not None:
            await llm.aclose()
    if args.json:
        print(json.dumps(scores_data(scores, args.model), indent=1, ensure_ascii=False))
    else:
        print(format_scores(scores, args.model))
    return 0

