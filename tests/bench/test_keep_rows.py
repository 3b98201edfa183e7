"""scripts/keep_rows.py keeps what an eval's figures and --resume need: a run cut short, copied back from
its kept rows, goes on without running its finished tasks again."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def test_kept_rows_resume_a_run_without_running_its_finished_tasks_again(tmp_path: Path) -> None:
    out, kept = tmp_path / "run", tmp_path / "kept"
    study = ["eval", "--suite", "miniwob", "--agent", "oracle", "--tasks", "click-test,click-button", "--out", str(out)]
    assert main(study) == 0
    cut_short = out / "oracle" / "miniwob.focus-text.seed0"  # a task killed mid-run: steps, no result
    cut_short.mkdir(parents=True)
    (cut_short / "steps.jsonl").write_text('{"step": 1}\n', encoding="utf-8")
    ran = subprocess.run([sys.executable, str(ROOT / "scripts" / "keep_rows.py"), str(out), str(kept)],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file()) == [
        "results.jsonl", "run.json", "summary.json"]  # no traces, screenshots, HARs, nor the cut-short steps

    # As if the run had been cut short after its first task: only the second runs on --resume.
    first, second = rows(out)
    shutil.rmtree(out)
    shutil.copytree(kept, out)
    (out / "results.jsonl").write_text(json.dumps(first) + "\n", encoding="utf-8")
    assert main([*study, "--resume"]) == 0
    assert [row["task_id"] for row in rows(out)] == [first["task_id"], second["task_id"]]
    assert not (out / "oracle" / first["task_id"]).exists()  # the finished task did not run again
    assert (out / "oracle" / second["task_id"] / "result.json").is_file()
