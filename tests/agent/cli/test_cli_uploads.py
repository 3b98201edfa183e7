"""`forethought run --upload-dir DIR`: upload_file sends files under DIR and nothing else."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli.main import main

FILES_PAGE = Path(__file__).resolve().parents[2] / "pages" / "faults_files.html"


@pytest.mark.parametrize("allowed", [True, False])
def test_cli_run_uploads_only_from_upload_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              allowed: bool) -> None:
    assert main(["observe", str(FILES_PAGE), "--json"]) == 0
    button = next(e["id"] for e in json.loads(capsys.readouterr().out)["elements"] if e["name"] == "Choose a photo")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "photo.png").write_bytes(b"not really a png")
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"policy": [f"upload_file('{button}', '{uploads / 'photo.png'}')",
                                             "send_msg_to_user('done')"]}))

    code = main(["run", "--url", str(FILES_PAGE), "--goal", "attach the photo", "--model", f"scripted:{script}",
                 "--strategy", "reactive", "--no-screenshots", "--out", str(tmp_path / "run"),
                 *(["--upload-dir", str(uploads)] if allowed else [])])

    assert code == 0
    events = [json.loads(line) for line in (tmp_path / "run" / "faults_files" / "trace.jsonl").read_text().splitlines()]
    [after_upload] = [e for e in events if e["type"] == "observation" and e["index"] == 1]
    seen = json.dumps(after_upload)
    if allowed:
        assert after_upload["last_action_error"] is None and "chosen: photo.png" in seen
    else:
        assert "outside the folders uploads may come from" in after_upload["last_action_error"]
        assert "chosen: photo.png" not in seen
