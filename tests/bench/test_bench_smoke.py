"""Every bench in bench/ still runs: its quick mode, as a user would start it, exits 0 and prints its
figures. The figures themselves are not checked (a quick run is too short to mean much, and the
machine is shared); the full runs are the benches' own business."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
TIMEOUT_S = 180

# bench script -> its quick-mode flags (OUT is replaced by a scratch directory), and a pattern for each
# figure line it must print.
QUICK_RUNS: dict[str, tuple[list[str], list[str]]] = {
    "observation.py": (["--quick"], [
        r"big page \(2,000\) +\d+ +\d+ +\d+\.\d",
        r"geometric mean of time ratios: \d+\.\d\d",
        r"20,000-element page: \d+ elements, \d+ ids; observe \d+ ms, render_text \d+ ms",
        r"cl100k_base \(envs/tokens.py\) +\d+\.\d\d +\d+\.\d\d",
        r"bar tokens/element \(untrimmed, <= 20 by every tokenizer above\): (MET|MISSED)",
    ]),
    "step_latency.py": (["--quick"], [
        r"requests: \d+ prediction, \d+ proposal, \d+ verdict",
        r"step wall time / critical path: median \d+\.\d{3}, all steps together \d+\.\d{3}",
    ]),
    "local_model.py": (["--quick"], [
        r" reactive +1 +\d+\.\d",
        r"  dreamer +sim: 3\.0 calls a step; per call \d+ prompt tokens \(\d+ cached\), \d+ generated",
        r"median step reactive \d+\.\d s, dreamer \d+\.\d s; dreamer / reactive = \d+\.\d\d",
        r"dreamer's median cached share: sim \d\.\d\d, score \d\.\d\d",
    ]),
    "faults.py": (["--quick", "--keep", "OUT"], [
        r"survived  model endpoint flaky",
        r"total: \d+ faults tried, \d+ survived, \d+ trace events lost, \d+ secrets found",
    ]),
    "eval_throughput.py": (["--quick"], [
        r"local 1 worker\(s\): +\d+\.\d tasks/min",
        r"ray   2 worker\(s\): +\d+\.\d tasks/min",
        r"CPU per task: \d+\.\d\d s",
        r"local: 2 workers / 1 worker: \d+\.\d\dx",
        r"2 worker\(s\): ray / local: \d+\.\d\dx",
    ]),
    "compute_frontier.py": (["--smoke", "--out", "OUT"], [
        r"== combined: 2 task\(s\)",
        r"dreamer +[1-9]\d* +\d+ +\d+ +\d+ +\d+\n",  # its steps, overruled, right, wrong, by fact
        r"adaptive's [1-9]\d* steps by mode: reactive \d+",
        r"adaptive tokens / dreamer tokens = \d+\.\d\d at success",
        r"combined frontier plot: ",
    ]),
    "snell.py": (["--quick", "--out", "OUT"], [
        r"\| smollm2-135m \| 135M \| dreamer \| 4 \| 50\.0% ± 25\.0 \| \d\.\d\de\+11 \|",
        r"- 135M dreamer vs 1\.5B reactive: success 50\.0% vs 50\.0% \(\+0\.0 points, within one s\.e\.\), "
        r"FLOPs 0\.\d\dx",
        r"written: .*snell\.md",
    ]),
}


def test_every_bench_has_a_quick_run() -> None:
    scripts = [p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")]
    assert sorted(QUICK_RUNS) == sorted(scripts)


@pytest.mark.parametrize("script", sorted(QUICK_RUNS))
def test_quick_mode_runs_and_prints_its_figures(script: str, tmp_path: Path) -> None:
    flags, figures = QUICK_RUNS[script]
    out = tmp_path / "out"
    # Offline and with nothing of the caller's model configuration: the quick modes bring their own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FORETHOUGHT_"))}
    run = subprocess.run([sys.executable, str(BENCH / script), *[str(out) if f == "OUT" else f for f in flags]],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    said = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    assert run.returncode == 0, said
    missing = [pattern for pattern in figures if not re.search(pattern, run.stdout)]
    assert missing == [], said
    assert not (tmp_path / "runs").exists()  # nothing written outside the scratch directory given
