"""Tasks per minute of `forethought eval` with the oracle agent on the local suite, 1 worker vs 2.

The oracle agent spends no time on LLM calls, so this measures the harness itself: browsers, site
servers, resets, observations, evaluators. Each run is end to end (workers start their browser and
sites, run the tasks, stop), as a user sees it. The machine's load average is printed next to the
figures, and how busy the cores were during each run: other processes share them, and once they
are all busy a second worker can only take CPU time from the first.

    python bench/eval_throughput.py [--tasks N] [--workers 1,2]

Bar: 2 workers >= 1.6x the throughput of 1 worker.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.evaluate import EvalOptions, load_suite, run_eval  # noqa: E402

BAR = 1.6


async def tasks_per_minute(workers: int, task_count: int | None) -> tuple[float, int, int]:
    """(tasks per minute, tasks run, successes) of one oracle run of the local suite."""
    tasks = load_suite("local")
    if task_count:
        tasks = tasks[:task_count]
    with tempfile.TemporaryDirectory(prefix="forethought-bench-") as out:
        options = EvalOptions(suite="local", out=Path(out), agent="oracle", workers=workers, progress=None)
        started = time.perf_counter()
        summary = await run_eval(options, tasks)
        seconds = time.perf_counter() - started
    row = summary["strategies"]["oracle"]
    return row["finished"] * 60 / seconds, row["finished"], row["successes"]


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How busy the machine's cores were in between (everyone's processes, not only ours)."""
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, help="run only the first N tasks of the suite (default: all)")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (default: %(default)s)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print(f"cores: {os.cpu_count()}")
    rates: dict[int, float] = {}
    for workers in counts:
        before, cpu_before = load(), cpu_times()
        rate, finished, successes = await tasks_per_minute(workers, args.tasks)
        rates[workers] = rate
        print(f"{workers} worker(s): {rate:6.1f} tasks/min  ({successes}/{finished} oracle successes)  "
              f"load average before {before}, after {load()}; cores busy {100 * busy_share(cpu_before, cpu_times()):.0f}%")
    if 1 in rates and 2 in rates:
        ratio = rates[2] / rates[1]
        print(f"2 workers / 1 worker: {ratio:.2f}x  (bar {BAR}x: {'met' if ratio >= BAR else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
