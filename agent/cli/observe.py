"""`forethought observe URL`: print exactly what the agent would see on a page."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.common import UserError, add_browser_options, browser_config, task_for_url
from envs.env import BrowserEnv, StartPageError
from envs.marks import draw_marks
from envs.observation import ObservationOptions
from envs.rendering import render_text
from envs.screenshot import element_boxes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="URL, file path, bundled:NAME (e.g. bundled:demo) or miniwob:TASK")
    parser.add_argument("--json", action="store_true",
                        help="print the observation as JSON (url, title, tabs, elements [{id, role, name, ...}], goal)")
    parser.add_argument("--html", action="store_true", help="also show the pruned HTML")
    parser.add_argument("--screenshot", metavar="FILE", help="save a PNG screenshot of the viewport")
    parser.add_argument("--marks", action="store_true",
                        help="with --screenshot: draw each element's id at its box (set-of-marks), as a "
                             "multimodal model would be shown the page")
    parser.add_argument("--budget", type=int, default=ObservationOptions().token_budget, metavar="TOKENS",
                        help="token budget of the page text, trimmed to fit (default: %(default)s)")
    parser.add_argument("--seed", type=int, metavar="N", help="with miniwob:TASK: the episode's seed (default: 0)")
    add_browser_options(parser)
    parser.set_defaults(handler=observe_command)


async def observe_command(args: argparse.Namespace) -> int:
    if args.marks and not args.screenshot:
        raise UserError("--marks draws on the screenshot: pass --screenshot FILE too")
    task = task_for_url(args.url, seed=args.seed)
    options = ObservationOptions(token_budget=args.budget, html=args.html, screenshot=bool(args.screenshot))
    async with BrowserEnv(browser_config(args), options) as env:
        try:
            obs, info = await env.reset(task)
        except StartPageError as exc:  # the user's URL: a server not running, a typo
            raise UserError(f"could not open {args.url}: {exc.reason}; check the URL and that its server "
                            "is running") from None
        if args.marks and obs.screenshot and env.session.page is not None:
            obs.screenshot = draw_marks(obs.screenshot, await element_boxes(env.session.page))
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
