"""Copy the rows of an eval or frontier run directory that its figures and `--resume` need, and nothing else.

    python scripts/keep_rows.py RUN_DIR DEST

Keeps run.json, results.jsonl and summary.json of every eval under RUN_DIR and each finished task's
steps.jsonl (what the frontier bench counts overrulings and adaptive's modes from), in the same layout.
Traces, screenshots, HARs and checkpoints stay behind, so the copy is small enough to commit: the README's long
measurements keep their rows in bench/results/, and a run cut short by the end of a session goes on from
a copy with `cp -r DEST RUN_DIR` and the bench's `--resume` (finished tasks are not run again).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

KEPT = ("run.json", "results.jsonl", "summary.json", "steps.jsonl")


def keep_rows(run_dir: Path, dest: Path) -> int:
    """Copy the kept files of `run_dir` into `dest`; how many were copied."""
    copied = 0
    for path in sorted(run_dir.rglob("*")):
        unfinished = path.name == "steps.jsonl" and not (path.parent / "result.json").is_file()
        if path.name in KEPT and path.is_file() and not unfinished:  # a task cut short runs again on --resume
            target = dest / path.relative_to(run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied += 1
    return copied


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[0]).is_dir():
        print("usage: python scripts/keep_rows.py RUN_DIR DEST (RUN_DIR: an eval's or the frontier bench's --out)",
              file=sys.stderr)
        return 2
    print(f"kept {keep_rows(Path(argv[0]), Path(argv[1]))} files of {argv[0]} in {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
