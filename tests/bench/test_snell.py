"""bench/snell.py on two hand-made eval runs (one per model): the table's figures worked out by hand, the
small-plans-vs-big-reacts comparison, the plot's series coloured by model, and a bad directory refused."""
from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from agent.llm.catalogue import CATALOGUE
from bench.snell import collect, main

SVG = "{http://www.w3.org/2000/svg}"
N_135M = CATALOGUE["smollm2-135m"].parameters
N_0_5B = CATALOGUE["qwen2.5-coder-0.5b"].parameters


def write_run(run: Path, model: str, strategy: str, tasks: dict[str, tuple[bool, float]], roles: tuple[str, ...],
              prompt: int, cached: int, completion: int) -> None:
    """Tasks of one strategy (task id -> (success, seconds)), each role making one call of this usage."""
    usage = {"prompt_tokens": prompt, "cached_tokens": cached, "completion_tokens": completion}
    with open(run / "results.jsonl", "a", encoding="utf-8") as results:
        for task_id, (success, seconds) in tasks.items():
            events = [{"type": "task", "models": {role: {"model": f"local:{model}"} for role in roles}},
                      *({"type": "llm_call", "role": role, "model": model, "usage": usage} for role in roles)]
            (run / strategy / task_id).mkdir(parents=True)
            (run / strategy / task_id / "trace.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
            results.write(json.dumps({"task_id": task_id, "strategy": strategy,
                                      "status": "success" if success else "failure", "steps": 1,
                                      "tokens": len(roles) * (prompt + completion), "calls": len(roles),
                                      "cost_usd": 0.0, "seconds": seconds}) + "\n")


def two_runs(root: Path) -> tuple[Path, Path]:
    small, big = root / "small", root / "big"  # an eval run; a compute_frontier --out holding one
    small.mkdir()
    (big / "miniwob").mkdir(parents=True)
    write_run(small, "smollm2-135m", "reactive", {"t1": (True, 2.0), "t2": (False, 4.0)}, ("policy",), 100, 40, 10)
    write_run(small, "smollm2-135m", "adaptive", {"t1": (True, 9.0), "t2": (True, 11.0)},
              ("policy", "world_model"), 500, 100, 100)
    write_run(big / "miniwob", "qwen2.5-coder-0.5b", "reactive", {"t1": (True, 10.0), "t2": (True, 10.0)},
              ("policy",), 100, 40, 10)
    return small, big


def test_the_table_and_plot_from_two_runs(tmp_path: Path, capsys) -> None:
    small, big = two_runs(tmp_path)
    out = tmp_path / "out"
    assert main([str(small), str(big), "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    small_reactive = 2 * N_135M * (100 - 40 + 10)
    small_adaptive = 2 * N_135M * 2 * (500 - 100 + 100)  # two roles, one call each
    big_reactive = 2 * N_0_5B * (100 - 40 + 10)
    assert f"| smollm2-135m | 135M | reactive | 2 | 50.0% ± 35.4 | {small_reactive:.3g} | 40 | 110 | 3.0 |" in printed
    assert f"| smollm2-135m | 135M | adaptive | 2 | 100.0% ± 0.0 | {small_adaptive:.3g} | 200 | 1200 | 10.0 |" \
        in printed
    assert f"| qwen2.5-coder-0.5b | 0.5B | reactive | 2 | 100.0% ± 0.0 | {big_reactive:.3g} | 40 | 110 | 10.0 |" \
        in printed
    # smallest model first, the reactive run before the planning one
    assert printed.index("| 135M | reactive") < printed.index("| 135M | adaptive") < printed.index("| 0.5B |")
    assert (f"- 135M adaptive vs 0.5B reactive: success 100.0% vs 100.0% (+0.0 points, within one s.e.), "
            f"FLOPs {small_adaptive / big_reactive:.2f}x, seconds 1.00x") in printed
    assert "135M reactive vs" not in printed and "note:" not in printed  # same tasks everywhere
    assert (out / "snell.md").read_text().strip() in printed

    with open(out / "snell.csv") as handle:
        rows = {(r["model"], r["strategy"]): r for r in csv.DictReader(handle)}
    assert float(rows[("smollm2-135m", "adaptive")]["mean_flops"]) == small_adaptive
    assert rows[("qwen2.5-coder-0.5b", "reactive")]["parameters"] == str(N_0_5B)

    root = ET.fromstring((out / "snell.svg").read_text())
    panels = root.findall(f"{SVG}g[@class='panel']")
    assert [p.get("data-measure") for p in panels] == ["mean_flops", "mean_seconds", "mean_tokens"]
    colors = {p.get("data-strategy"): p.find(f"{SVG}circle").get("fill")  # type: ignore[union-attr]
              for p in panels[0].findall(f"{SVG}g[@class='point']")}
    assert set(colors) == {"135M reactive", "135M adaptive", "0.5B reactive"}
    assert colors["135M reactive"] == colors["135M adaptive"] != colors["0.5B reactive"]  # one colour a model
    assert (out / "snell.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_on_different_tasks_are_flagged(tmp_path: Path) -> None:
    small, big = two_runs(tmp_path)
    write_run(big / "miniwob", "qwen2.5-coder-0.5b", "dreamer", {"t3": (True, 1.0)}, ("policy",), 10, 0, 1)
    _series, notes = collect([small, big])
    assert notes == ["the series ran different tasks (0 in common of 3): success rates are not on the same tasks"]


def test_a_directory_without_results_is_one_error_and_writes_nothing(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    assert main([str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: no results.jsonl in {tmp_path / 'empty'} or its "
                                               "subdirectories: give a `forethought eval` run directory or a "
                                               "bench/compute_frontier.py --out directory")
    assert not out.exists()
