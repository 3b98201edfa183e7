"""Regenerate the README's pictures of the report from real runs (the scripted model on local pages, a
few seconds, no network):

    python docs/make_screenshots.py

docs/report-run.png    `forethought show` on a dreamer run of the bundled demo page
                       (traces/examples/scripts/demo-order.json): the summary and the first steps
docs/report-study.png  `forethought show` on `forethought eval --suite local` of three tasks under
                       reactive and dreamer (docs/study-model.json): the study view

Each is taken by headless Chromium at 1240 px wide and stored as a 256-colour PNG.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from envs.browser import BrowserConfig, BrowserSession

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
DEMO_GOAL = "Order 2 notebooks with a Sand cover, then tell me what the status line says."
STUDY_TASKS = "local.shop.2,local.shop.12,local.forum.1"
WIDTH = 1240


def forethought(*args: object) -> str:
    """Run the CLI as a user does; its last printed line (show prints the page it wrote)."""
    done = subprocess.run([sys.executable, "-m", "agent.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


async def screenshot(page_file: Path, out: Path, height: int | None) -> None:
    """The page at WIDTH px, its top `height` px (None: all of it), as a small PNG."""
    async with BrowserSession(BrowserConfig(viewport_width=WIDTH, viewport_height=height or 900)) as session:
        await session.new_context()
        assert session.page is not None
        await session.page.goto(page_file.as_uri())
        await session.page.screenshot(path=str(out), full_page=height is None)
    Image.open(out).convert("RGB").quantize(256).save(out, optimize=True)
    print(f"{out.relative_to(ROOT)}: {out.stat().st_size // 1024} KB")


async def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch)
        forethought("run", "--url", "bundled:demo", "--goal", DEMO_GOAL, "--strategy", "dreamer", "-k", "2",
                    "--samples", "1", "--model", "scripted:traces/examples/scripts/demo-order.json",
                    "--out", runs / "demo")
        await screenshot(Path(forethought("show", runs / "demo")), DOCS / "report-run.png", height=1500)
        forethought("eval", "--suite", "local", "--tasks", STUDY_TASKS, "--strategy", "reactive,dreamer", "-k", "2",
                    "--samples", "1", "--model", f"scripted:{DOCS / 'study-model.json'}", "--out", runs / "study")
        await screenshot(Path(forethought("show", runs / "study")), DOCS / "report-study.png", height=None)


if __name__ == "__main__":
    asyncio.run(main())
