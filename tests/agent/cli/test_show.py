"""`show`, `replay` and `wm-eval` on a run directory, through the real CLI: an eval's study view (a row
per task, a column per strategy, each cell linked to its report; the summary and the frontier on the
same page) opened in headless Chromium, every task of a run replayed and scored, a divergence in one
task failing the whole replay."""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from agent.cli.main import main
from envs.browser import BrowserSession
from traces.schema import TRACE_FILE

TASKS = ("miniwob.click-test.seed0", "miniwob.focus-text.seed0")
STRATEGIES = ("reactive", "dreamer")
PREDICTION = json.dumps({"changes": "The button is pressed.", "url": "", "appear": [], "disappear": []})
SCRIPT = {
    "policy": [{"when": "Click the button.", "answer": "click('e1')", "repeat": True},
               {"when": "Focus into the textbox.", "answer": "focus('e1')", "repeat": True}],
    "world_model": [{"when": "Action:", "answer": PREDICTION, "repeat": True}],
    "verifier": [{"when": "Task:", "answer": '{"reason": "fine", "verdict": "complete"}', "repeat": True}],
}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real eval of two MiniWoB++ tasks under two strategies, with the scripted model."""
    root = tmp_path_factory.mktemp("study")
    script = root / "model.json"
    script.write_text(json.dumps(SCRIPT), encoding="utf-8")
    out = root / "run"
    assert main(["eval", "--suite", "miniwob", "--tasks", "click-test,focus-text", "--strategy", ",".join(STRATEGIES),
                 "--model", f"scripted:{script}", "-k", "2", "--samples", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(study: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(study, copy)
    return copy


async def test_show_on_an_eval_run_writes_a_study_view_with_a_column_per_strategy(study: Path) -> None:
    assert await asyncio.to_thread(main, ["show", str(study)]) == 0  # the command runs its own event loop
    index = study / "report.html"
    async with BrowserSession() as session:
        await session.new_context()
        page = session.page
        assert page is not None
        await page.goto(index.as_uri())
        headers = await page.locator("#tasks th.strategy").evaluate_all("ths => ths.map(th => th.dataset.strategy)")
        assert headers == list(STRATEGIES)
        rows = page.locator("#tasks tbody tr")
        assert await rows.evaluate_all("trs => trs.map(tr => tr.dataset.task)") == list(TASKS)
        links = await page.locator("#tasks td.cell a").evaluate_all("links => links.map(a => a.href)")
        assert len(links) == len(TASKS) * len(STRATEGIES)
        targets = [Path(unquote(urlparse(link).path)) for link in links]
        assert all(target.is_file() and target.name == "report.html" for target in targets), targets
        assert {target.parent.parent.name for target in targets} == set(STRATEGIES)
        for strategy in STRATEGIES:
            cells = await page.locator(f'#tasks td.cell[data-strategy="{strategy}"]').all_inner_texts()
            assert all(cell.startswith("✓ success") and "1 step ·" in cell for cell in cells), cells
        summary = await page.locator("#summary tr td:first-child").all_inner_texts()
        assert summary == list(STRATEGIES)
        assert await page.locator("#frontier img").evaluate("img => img.complete && img.naturalWidth > 0")

        await page.locator('#tasks td.cell[data-strategy="dreamer"] a').first.click()
        await page.wait_for_load_state()
        assert page.url.endswith(f"dreamer/{TASKS[0]}/report.html")
        assert await page.locator("section.step").count() == 1
        assert await page.locator("section.step .mark").count() == 1  # the clicked button, outlined


def test_an_oracle_eval_links_each_task_to_its_result_and_shows_the_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "oracle"
    tasks = "local.shop.2,local.shop.12,local.forum.1"
    assert main(["eval", "--suite", "local", "--agent", "oracle", "--tasks", tasks, "--out", str(out)]) == 0
    code, printed, _err = run_cli(capsys, "show", out)
    assert (code, printed.strip()) == (0, str(out / "report.html"))  # no traces, still an index
    html = (out / "report.html").read_text(encoding="utf-8")
    for task in tasks.split(","):
        assert f'href="oracle/{task}/result.json"' in html and (out / "oracle" / task / "result.json").is_file()
    assert "pass must_include: expected &#39;20&#39; in the answer" in html  # the evaluator's explanation
    assert html.count("✓ success") == 3


def test_replay_replays_every_task_of_a_run_and_fails_when_one_diverges(
        run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, printed, _err = run_cli(capsys, "replay", run_copy)
    assert code == 0 and "replay: 4 of 4 tasks the same" in printed

    code, printed, _err = run_cli(capsys, "replay", "--agent", run_copy, "--out", run_copy.parent / "again")
    assert code == 0 and "replay: 4 of 4 tasks the same" in printed
    for strategy in STRATEGIES:  # each strategy's task kept apart in the new run, as in the old one
        for task in TASKS:
            assert (run_copy.parent / "again" / strategy / task / TRACE_FILE).is_file()

    # The recorded page of one task says another thing than the page shows: that task diverges.
    trace = run_copy / "dreamer" / TASKS[1] / TRACE_FILE
    events = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    first = next(e for e in events if e["type"] == "observation")
    first["title"] = "Another page"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    code, printed, _err = run_cli(capsys, "replay", run_copy)
    assert code == 1
    assert f"replay: 3 of 4 tasks the same; diverged: dreamer/{TASKS[1]}" in printed


def test_wm_eval_scores_every_task_of_a_run(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task_dirs = sorted(run_copy / strategy / task for strategy in STRATEGIES for task in TASKS)
    code, whole, _err = run_cli(capsys, "wm-eval", "--json", run_copy)
    assert code == 0
    code, each, _err = run_cli(capsys, "wm-eval", "--json", *task_dirs)
    assert code == 0
    assert json.loads(whole) == json.loads(each)
    code, printed, _err = run_cli(capsys, "wm-eval", run_copy)
    assert all(str(d) in printed for d in task_dirs)
    assert "precision" in printed.split("overall")[1]  # the dreamer's predictions were scored


def test_a_directory_without_traces_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show", "replay", "wm-eval"):
        code, _out, err = run_cli(capsys, command, tmp_path)
        assert code == 2, command
        assert err.count("\n") == 1 and "no trace.jsonl in it or in its task directories" in err, err
