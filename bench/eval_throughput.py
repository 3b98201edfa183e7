"""Tasks per minute of `forethought eval` with the oracle agent on the local suite, 1 worker vs 2.

The oracle agent spends no time on LLM calls, so this measures the harness itself: browsers, site
servers, resets, observations, evaluators. Each run is end to end (workers start their browser and
sites, run the tasks, stop), as a user sees it. The machine's load average is printed next to the
figures, and how busy the cores were during each run: other processes share them, and once they
are all busy a second worker can only take CPU time from the first.

Each run also prints the CPU seconds per task spent by each kind of process it started (this
Python process, the Playwright driver, Chromium's browser, renderer, GPU and utility processes,
the site servers). CPU seconds hardly depend on what else the machine is doing, unlike wall time,
so they say where the harness's cost goes and whether a change cut it.

    python bench/eval_throughput.py [--tasks N] [--workers 1,2] [--backend local,ray] [--repeat N] [--cpu] [--quick]

--backend local,ray measures both backends, each worker count on each, in one run. Ray is started once
before the timed runs (on a cluster it is up already); each run still starts its actors, their browsers
and sites, as the local backend starts its workers. CPU by process kind is for the local backend only
(Ray's actors are not this process's children).

--repeat N runs every (worker count, backend) N times, round after round, and gives each ratio as the
median of its rounds' ratios with their range: the machine's speed drifts by several percent within
minutes, so a ratio is taken within one round and its spread shown.

--quick runs the first task with 1 and 2 workers and the CPU breakdown, on both backends when Ray is
installed: a smoke test (seconds).

Bars: 2 workers >= 1.6x the throughput of 1 worker; Ray >= 0.9x the local backend at the same workers.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.evaluation.runner import EvalOptions, run_eval  # noqa: E402
from agent.evaluation.suites import load_suite  # noqa: E402
from envs.browser import find_chromium  # noqa: E402

BAR = 1.6
RAY_BAR = 0.9
QUICK_TASKS = 1
SAMPLE_INTERVAL_S = 0.1


def process_kind(process: psutil.Process) -> str:
    """What a process started by the run is: python, playwright driver, chromium <type>, site server."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return "gone"
    if process.pid == os.getpid():
        return "python (agent, evaluators)"
    if any("envs.sites.server" in part for part in command):
        return "site servers"
    if any("chrom" in Path(part).name for part in command[:2]):  # Debian's is a shell script that execs it
        types = [part.split("=", 1)[1] for part in command if part.startswith("--type=")]
        if not types:
            return "chromium browser"
        if types[0] == "utility":
            sub = [part.split("=", 1)[1].rsplit(".", 1)[-1] for part in command
                   if part.startswith("--utility-sub-type=")]
            return f"chromium utility ({sub[0] if sub else '?'})"
        return f"chromium {types[0]}"
    if command and Path(command[0]).name == "node":
        return "playwright driver"
    return "other: " + Path(command[0]).name if command else "other"


class CpuSampler:
    """CPU seconds of this process and every process it started, summed by process kind.

    Processes are sampled every SAMPLE_INTERVAL_S. Chromium's renderers come and go with each task's
    browser context: what one spent after its last sample is found in its zygote's reaped-children
    time and counted as renderer time too. The sampler's own thread is left out of this process's."""

    def __init__(self) -> None:
        # (pid, create time) -> [kind, parent key, CPU s, reaped children's CPU s, sample number]
        self.seen: dict[tuple[int, float], list] = {}
        self.samples = 0
        self.own_seconds = 0.0  # the sampler thread's CPU time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.samples += 1
        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
                    if key not in self.seen:
                        parent = process.parent()
                        parent_key = (parent.pid, parent.create_time()) if parent else None
                        self.seen[key] = [process_kind(process), parent_key, 0.0, 0.0, 0]
                    elif self.seen[key][0].startswith(("other", "chromium zygote")):
                        # Debian's chromium is a wrapper script until it execs, and a process the
                        # zygote forks looks like the zygote until it renames itself a renderer.
                        self.seen[key][0] = process_kind(process)
                    self.seen[key][2:] = [times.user + times.system,
                                          times.children_user + times.children_system, self.samples]
            except psutil.Error:
                continue  # it exited between listing and reading

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sample()
        self.own_seconds = time.thread_time()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._start = {key: (seconds, reaped) for key, (_, _, seconds, reaped, _) in self.seen.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for key, (kind, _, seconds, _, _) in self.seen.items():
            totals[kind] += seconds - self._start.get(key, (0.0, 0.0))[0]
        for key, (kind, _, _, reaped, last_sample) in self.seen.items():
            if kind != "chromium zygote":
                continue
            # Its children that were gone by its last sample: their full time is in `reaped`.
            sampled = sum(child[2] for child in self.seen.values() if child[1] == key and child[4] < last_sample)
            totals["chromium renderer"] += max(reaped - sampled, 0.0)
        totals["python (agent, evaluators)"] -= self.own_seconds
        return dict(sorted(totals.items(), key=lambda item: -item[1]))


async def tasks_per_minute(workers: int, task_count: int | None, backend: str) -> tuple[float, int, int]:
    """(tasks per minute, tasks run, successes) of one oracle run of the local suite."""
    tasks = load_suite("local")
    if task_count:
        tasks = tasks[:task_count]
    with tempfile.TemporaryDirectory(prefix="forethought-bench-") as out:
        options = EvalOptions(suite="local", out=Path(out), agent="oracle", workers=workers, progress=None,
                              backend=backend)
        started = time.perf_counter()
        summary = await run_eval(options, tasks)
        seconds = time.perf_counter() - started
    row = summary["strategies"]["oracle"]
    return row["finished"] * 60 / seconds, row["finished"], row["successes"]


def worker_pid() -> int:
    return os.getpid()


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


def format_breakdown(by_kind: dict[str, float], tasks: int) -> str:
    total = sum(by_kind.values())
    lines = [f"    CPU per task: {total / tasks:.2f} s"]
    lines += [f"      {seconds / tasks:6.3f} s  {100 * seconds / total:4.1f}%  {kind}"
              for kind, seconds in by_kind.items() if seconds >= 0.0005 * tasks]
    return "\n".join(lines)


def ratio_line(label: str, numerators: list[float], denominators: list[float], bar: float) -> str:
    """The median of the rounds' ratios against the bar, with their range when there were several."""
    ratios = sorted(n / d for n, d in zip(numerators, denominators, strict=True))
    median = statistics.median(ratios)
    spread = f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
    return f"{label}: {median:.2f}x{spread}  (bar {bar}x: {'met' if median >= bar else 'NOT met'})"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, help="run only the first N tasks of the suite (default: all)")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (default: %(default)s)")
    parser.add_argument("--backend", default="local", help="backends to measure: local, ray or local,ray "
                        "(default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of runs (default: %(default)s)")
    parser.add_argument("--cpu", action="store_true",
                        help="also print CPU seconds per task by process kind (the sampling thread shares the "
                             "workers' interpreter, so the throughput figures of such a run are a little lower)")
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_TASKS} task(s), with --cpu: a smoke test (--tasks still overrides)")
    args = parser.parse_args()
    backends = args.backend.split(",")
    if args.quick:
        args.tasks, args.cpu = args.tasks or QUICK_TASKS, True
        if importlib.util.find_spec("ray") is not None and "ray" not in backends:
            backends.append("ray")
    counts = [int(n) for n in args.workers.split(",")]
    chromium = find_chromium() or "Playwright's own"
    print(f"cores: {os.cpu_count()}; workers' Chromium: {chromium}")
    if "ray" in backends:
        import ray

        from agent.evaluation.ray_backend import init_ray

        init_ray(ray, cpus=max(counts))
        # Until its own processes and idle workers have started, Ray would take CPU from the first runs.
        ray.get([ray.remote(num_cpus=1)(worker_pid).remote() for _ in range(max(counts))])
    rates: dict[tuple[str, int], list[float]] = defaultdict(list)
    for round_ in range(args.repeat):
        if args.repeat > 1:
            print(f"round {round_ + 1} of {args.repeat}", flush=True)
        for workers in counts:
            for backend in backends:
                cpu = args.cpu and backend == "local" and round_ == 0
                before, cpu_before = load(), cpu_times()
                with CpuSampler() if cpu else nullcontext() as sampler:
                    rate, finished, successes = await tasks_per_minute(workers, args.tasks, backend)
                rates[backend, workers].append(rate)
                busy = busy_share(cpu_before, cpu_times())
                print(f"{backend:<5} {workers} worker(s): {rate:6.1f} tasks/min  ({successes}/{finished} oracle "
                      f"successes)  load average before {before}, after {load()}; cores busy {100 * busy:.0f}%",
                      flush=True)
                if sampler is not None:
                    print(format_breakdown(sampler.by_kind(), finished), flush=True)
    for backend in backends:
        if (backend, 1) in rates and (backend, 2) in rates:
            print(ratio_line(f"{backend}: 2 workers / 1 worker", rates[backend, 2], rates[backend, 1], BAR))
    for workers in counts:
        if ("ray", workers) in rates and ("local", workers) in rates:
            print(ratio_line(f"{workers} worker(s): ray / local", rates["ray", workers], rates["local", workers],
                             RAY_BAR))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
