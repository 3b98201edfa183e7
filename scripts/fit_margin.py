"""Fit the overrule margin on a tuning split: how overruling the greedy proposal fared at each margin
in an eval that ran a planning strategy and reactive on the same tasks (for example
`bench/compute_frontier.py --seed 1 --strategies reactive,dreamer`).

    python scripts/fit_margin.py RUN_DIR [--strategy dreamer]

RUN_DIR is the eval directory holding results.jsonl (for the frontier bench: OUT/miniwob). Prints,
per margin from the run's own up, the steps whose gap reaches it and how many were in tasks the
strategy solved and reactive failed (right) or the reverse (wrong), then the best margin.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in a checkout

from agent.evaluation.overrules import best_margin, margin_rows  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--strategy", default="dreamer")
    args = parser.parse_args(argv)
    if not (args.run_dir / "results.jsonl").is_file():
        print(f"fit_margin: no results.jsonl in {args.run_dir} (give the eval directory, e.g. OUT/miniwob)",
              file=sys.stderr)
        return 2
    run = json.loads((args.run_dir / "run.json").read_text(encoding="utf-8")) if (args.run_dir / "run.json").is_file() \
        else {}
    ran_with = float(run.get("planner", {}).get("overrule_margin", 0.0))
    margins = sorted({ran_with} | {round(m / 20, 2) for m in range(1, 21) if m / 20 > ran_with})
    rows = margin_rows(args.run_dir, args.strategy, margins)
    print(f"{args.strategy} in {args.run_dir} (run with overrule margin {ran_with})")
    print(f"{'margin':>6} {'steps':>6} {'right':>6} {'wrong':>6} {'same':>6} {'net':>5}")
    for row in rows:
        print(f"{row.margin:>6.2f} {row.steps:>6} {row.right:>6} {row.wrong:>6} {row.same:>6} {row.net:>+5}")
    best = best_margin(rows)
    print("right: the step's task was solved and reactive's failed; wrong: the reverse; same: one outcome both ways")
    print(f"best margin: {best.margin:.2f} ({best.steps} overrules, net {best.net:+d})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
