"""README's sample output of `forethought run` is what the command prints: run the command it shows (the
bundled demo with the scripted model) and compare, with only the page's folder, the seconds and the token count
masked: the prompts carry the page's file:// URL, so the count grows with the checkout's path."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def readme_sample() -> tuple[list[str], list[str]]:
    """The command of README's sample (`$ forethought run ...`, its continuation lines joined) and the lines
    it shows printed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(\$ forethought run .*?)```", readme, re.S)
    assert block, "README has no `$ forethought run` sample"
    command, printed = block.group(1).split("\nstep 1", 1)
    return shlex.split(command.removeprefix("$ ").replace("\\\n", " ")), ("step 1" + printed).splitlines()


def test_the_readme_sample_is_what_the_run_prints(tmp_path: Path) -> None:
    argv, shown = readme_sample()
    assert argv[:2] == ["forethought", "run"]
    argv = [arg.replace("scripted:traces/", f"scripted:{ROOT / 'traces'}/") for arg in argv[2:]]
    ran = subprocess.run([sys.executable, "-m", "agent.cli", "run", *argv], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr

    def masked(line: str) -> str:
        line = re.sub(r"\d+ tokens, \$0\.0000, [\d.]+ s$", "T tokens, $0.0000, S s", line)
        return re.sub(r"file:///\S*/envs/", "file:///…/envs/", line)
    assert [masked(line) for line in ran.stdout.splitlines()] == [masked(line) for line in shown]
