"""The `forethought` command line."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from envs.browser import BrowserConfig, BrowserNotFound
from envs.env import BrowserEnv
from envs.observation import ObservationOptions, render_text
from envs.types import Task


class UserError(Exception):
    """A misconfiguration the user can fix; printed as one line, exit code 2."""


def task_for_url(url: str, goal: str = "", seed: int | None = None) -> Task:
    """`miniwob:NAME` is a MiniWoB++ task; anything else is a page to open."""
    if url.startswith("miniwob:"):
        from envs.miniwob import MiniWoBTask

        return MiniWoBTask(url.removeprefix("miniwob:"), seed=seed if seed is not None else 0)
    from envs.tasks import UrlTask, resolve_url

    try:
        resolve_url(url)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return UrlTask(id="observe", start_url=url, goal=goal)


def add_browser_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chromium", help="Chromium executable (default: $FORETHOUGHT_CHROMIUM, /usr/bin/chromium)")
    parser.add_argument("--headed", action="store_true", help="show the browser window")


def browser_config(args: argparse.Namespace) -> BrowserConfig:
    return BrowserConfig(chromium=args.chromium, headless=not args.headed)


async def observe_command(args: argparse.Namespace) -> int:
    task = task_for_url(args.url, seed=args.seed)
    options = ObservationOptions(token_budget=args.budget, html=args.html, screenshot=bool(args.screenshot))
    async with BrowserEnv(browser_config(args), options) as env:
        obs, info = await env.reset(task)
    if args.screenshot and obs.screenshot:
        Path(args.screenshot).write_bytes(obs.screenshot)
    if args.json:
        data: dict[str, Any] = obs.to_dict()
        data["goal"] = info["goal"]
        if not args.html:
            data.pop("html")
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        if info["goal"]:
            print(f"Goal: {info['goal']}")
        print(render_text(obs, args.budget))
        if args.html and obs.html:
            print("\n--- pruned HTML ---\n" + obs.html)
    if args.screenshot:
        print(f"screenshot written to {args.screenshot}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forethought", description="A web agent that thinks before it clicks.")
    commands = parser.add_subparsers(dest="command", required=True)

    observe = commands.add_parser("observe", help="print exactly what the agent would see on a page")
    observe.add_argument("url", help="URL, file path, bundled:NAME (e.g. bundled:demo) or miniwob:TASK")
    observe.add_argument("--json", action="store_true", help="machine-readable output")
    observe.add_argument("--html", action="store_true", help="also show the pruned HTML")
    observe.add_argument("--screenshot", metavar="FILE", help="save a PNG screenshot of the viewport")
    observe.add_argument("--budget", type=int, default=ObservationOptions().token_budget, help="token budget")
    observe.add_argument("--seed", type=int, help="seed for miniwob: tasks (default 0)")
    add_browser_options(observe)
    observe.set_defaults(handler=observe_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(args.handler(args))
    except (UserError, BrowserNotFound) as exc:
        print(f"forethought: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
