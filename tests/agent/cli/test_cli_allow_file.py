"""`--allow-file DIR` on `forethought run` and `forethought eval`: a file task reads its own folder (a
MiniWoB++ task, the package's html folder) and no other file unless the user allows it; a refused file's
text reaches neither the prompt nor any file of the run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli.main import main

PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY----- forethought-test-7f3a"


@pytest.fixture
def private_key(tmp_path: Path) -> Path:
    """A file outside every task's folder, standing for ~/.ssh/id_rsa."""
    key = tmp_path / "home" / ".ssh" / "id_rsa"
    key.parent.mkdir(parents=True)
    key.write_text(PRIVATE_KEY)
    return key


def _script(tmp_path: Path, *actions: str) -> str:
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"policy": list(actions)}))
    return f"scripted:{script}"


def _run_files_hold(run_dir: Path, text: str) -> list[str]:
    return [str(p.relative_to(run_dir)) for p in sorted(run_dir.rglob("*"))
            if p.is_file() and text.encode() in p.read_bytes()]


@pytest.mark.parametrize("allowed", [False, True])
def test_run_reads_a_file_outside_the_task_folder_only_with_allow_file(tmp_path: Path, private_key: Path,
                                                                        allowed: bool) -> None:
    task_folder = tmp_path / "task"
    task_folder.mkdir()
    (task_folder / "page.html").write_text("<title>Notes</title><p>Nothing here.</p>")
    out = tmp_path / "run"
    code = main(["run", "--url", str(task_folder / "page.html"), "--goal", "read the notes", "--strategy", "reactive",
                 "--model", _script(tmp_path, f"goto('{private_key.as_uri()}')", "send_msg_to_user('done')"),
                 "--out", str(out), *(["--allow-file", str(private_key.parent)] if allowed else [])])
    assert code == 0
    result = json.loads((out / "page" / "result.json").read_text())
    if allowed:
        assert result["blocked_urls"] == [] and "trace.jsonl" in _run_files_hold(out / "page", PRIVATE_KEY)
    else:
        assert result["blocked_urls"] == [private_key.as_uri()]
        assert _run_files_hold(out, PRIVATE_KEY) == []  # not in the prompts, the trace, the report or the HAR


@pytest.mark.parametrize("allowed", [False, True])
def test_eval_reads_a_file_outside_the_task_folder_only_with_allow_file(tmp_path: Path, private_key: Path,
                                                                         allowed: bool) -> None:
    out = tmp_path / "eval"
    code = main(["eval", "--suite", "miniwob", "--tasks", "click-test", "--strategy", "reactive", "--no-screenshots",
                 "--model", _script(tmp_path, f"goto('{private_key.as_uri()}')", "send_msg_to_user('done')"),
                 "--out", str(out), *(["--allow-file", str(private_key.parent)] if allowed else [])])
    assert code == 0
    [task_dir] = (out / "reactive").iterdir()
    result = json.loads((task_dir / "result.json").read_text())
    assert result["blocked_urls"] == ([] if allowed else [private_key.as_uri()])
    assert bool(_run_files_hold(out, PRIVATE_KEY)) == allowed


@pytest.mark.parametrize("command", [["run", "--url", "about:blank", "--goal", "g", "--model"],
                                     ["eval", "--suite", "miniwob", "--tasks", "click-test", "--model"]])
def test_a_missing_allow_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     command: list[str]) -> None:
    missing = tmp_path / "nowhere"
    model = _script(tmp_path, "send_msg_to_user('done')")
    assert main([*command, model, "--allow-file", str(missing), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert f"--allow-file {missing}: no such file or folder" in error and len(error.splitlines()) == 1
