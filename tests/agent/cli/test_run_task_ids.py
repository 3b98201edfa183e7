"""`forethought run --url`: the task (and its directory) is named after the URL unless --task-id names it,
and `--json` puts only the final result on stdout. Through the real CLI, on local pages."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli.main import main
from tests.pages.page_server import PageServer


@pytest.fixture
def answering(tmp_path: Path) -> Path:
    script = tmp_path / "answering.json"
    script.write_text(json.dumps({"policy": ["send_msg_to_user('done')"]}))
    return script


def run_json(capsys: pytest.CaptureFixture[str], *argv: object) -> dict[str, object]:
    """`forethought run ... --json`: stdout parsed as one JSON object (nothing else may be on it)."""
    capsys.readouterr()
    assert main(["run", *map(str, argv), "--strategy", "reactive", "--no-screenshots", "--json"]) == 0
    printed = capsys.readouterr()
    assert "finished: answer 'done'" in printed.err  # the lines for a reader went to stderr
    result: dict[str, object] = json.loads(printed.out)
    return result


def test_a_url_task_is_named_after_its_url(tmp_path: Path, answering: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "my page.html"
    page.write_text("<title>Mine</title><button>Go</button>")
    server = PageServer({"/shop/cart": "<title>Cart</title><button>Pay</button>"})
    try:
        served = f"{server.url}/shop/cart?session=1"
        port = server.url.rsplit(":", 1)[1]
        names = {f"127.0.0.1-{port}-shop-cart": served, "demo": "bundled:demo", "my-page": page}
        for task_id, url in names.items():
            out = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
            result = run_json(capsys, "--url", url, "--goal", "say done", "--model", f"scripted:{answering}",
                              "--out", out)
            assert (result["task_id"], result["task_dir"], result["answer"]) == (task_id, str(out / task_id), "done")
            assert json.loads((out / task_id / "result.json").read_text())["task_id"] == task_id
    finally:
        server.close()


def test_task_id_names_the_task_and_a_miniwob_task_keeps_its_own_name(
        tmp_path: Path, answering: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--url", "bundled:demo", "--task-id", "checkout-1", "--goal", "say done",
                      "--model", f"scripted:{answering}", "--out", tmp_path / "named")
    assert result["task_dir"] == str(tmp_path / "named" / "checkout-1")
    assert (tmp_path / "named" / "checkout-1" / "trace.jsonl").is_file()

    result = run_json(capsys, "--url", "miniwob:click-test", "--seed", "2", "--model", f"scripted:{answering}",
                      "--out", tmp_path / "miniwob")
    assert result["task_id"] == "miniwob.click-test.seed2"


@pytest.mark.parametrize("argv, message", [
    (["--url", "bundled:demo", "--goal", "g", "--task-id", "../elsewhere"], "a task id names a directory"),
    (["--url", "bundled:demo", "--goal", "g", "--task-id", ""], "a task id names a directory"),
    (["--url", "miniwob:click-test", "--task-id", "mine"], "a miniwob: task is miniwob.NAME.seedN"),
    (["--url", "bundled:demo", "--goal", "g", "--seed", "1"], "--seed picks a MiniWoB++ episode"),
])
def test_a_task_id_or_seed_that_cannot_apply_is_one_line_and_exit_2(
        argv: list[str], message: str, tmp_path: Path, answering: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *argv, "--model", f"scripted:{answering}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("forethought: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()
