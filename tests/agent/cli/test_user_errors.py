"""What users got wrong or met (issue #18), each through the command's own `main`: one line on stderr
that says what to do, exit code 2, no traceback. Paths that are not what they should be, a MiniWoB++
typo, a missing page, budgets that are not positive finite numbers, an endpoint that answers a web page,
and a renderer that crashes after the start page opened."""
from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import psutil
import pytest

from agent.cli.main import main
from agent.llm.fake_server import Failure, FakeOpenAIServer
from tests.agent.answers import candidates

SCRIPT = Path(__file__).resolve().parents[3] / "traces" / "examples" / "scripts" / "demo-order.json"
DEMO = ["run", "--url", "bundled:demo", "--goal", "Order a notebook", "--strategy", "reactive", "--no-screenshots"]


def refused(argv: list[object], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    """The one line `forethought argv` printed, once it exited `code` (2: the user's mistake) with
    nothing else on stderr."""
    exit_code = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    assert exit_code == code, err
    assert err.startswith("forethought: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip().removeprefix("forethought: ")


@pytest.mark.parametrize("flag", ["--task", "--model", "--adaptive-settings"])
def test_a_directory_where_a_file_is_expected_is_named_with_its_option(flag: str, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    value = f"scripted:{folder}" if flag == "--model" else str(folder)
    argv: list[object] = ["run", "--task", folder] if flag == "--task" else [
        *DEMO, "--strategy", "adaptive", "--model", value if flag == "--model" else f"scripted:{SCRIPT}",
        *(["--adaptive-settings", folder] if flag == "--adaptive-settings" else []), "--out", tmp_path / "out"]
    assert refused(argv, capsys) == f"{flag} {value} is a directory; pass a file"


def test_out_naming_a_file_is_refused_and_the_file_is_left_alone(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    message = refused([*DEMO, "--model", f"scripted:{SCRIPT}", "--out", taken], capsys)
    assert message == f"--out {taken} is a file; pass a directory (or a path that does not exist yet)"
    assert taken.read_text() == "mine"
    message = refused([*DEMO, "--model", f"scripted:{SCRIPT}", "--out", taken / "run"], capsys)
    assert message == f"--out {taken / 'run'}: {taken} is a file; pass a directory (or a path that does not exist yet)"


def test_out_where_nothing_can_be_written_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    message = refused([*DEMO, "--model", f"scripted:{SCRIPT}", "--out", "/proc/forethought-run"], capsys)
    assert message.startswith("--out /proc/forethought-run: cannot write there (")
    assert message.endswith("); pass a directory you can write to")


def test_a_miniwob_typo_in_run_names_the_tasks_it_may_mean(capsys: pytest.CaptureFixture[str]) -> None:
    message = refused(["run", "--url", "miniwob:click-buton", "--model", f"scripted:{SCRIPT}"], capsys)
    assert message.startswith("unknown MiniWoB++ task 'click-buton'; did you mean click-button")


@pytest.mark.parametrize("form", ["path", "file URL", "task file"])
def test_a_missing_local_page_is_named_as_a_missing_file(form: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "gone.html"
    url = missing.as_uri() if form == "file URL" else str(missing)
    argv: list[object] = ["run", "--url", url, "--goal", "read it", "--model", f"scripted:{SCRIPT}"]
    if form == "task file":
        task = tmp_path / "task.json"
        task.write_text(json.dumps({"task_id": "t", "intent": "read it", "start_url": str(missing)}))
        argv = ["run", "--task", task, "--model", f"scripted:{SCRIPT}"]
    assert refused(argv, capsys).endswith(f"no such file: {missing}")


@pytest.mark.parametrize("flag, value, problem", [
    ("--budget-tokens", "-5", "greater than 0"), ("--budget-calls", "0", "greater than 0"),
    ("--budget-usd", "nan", "finite number"), ("--budget-usd", "inf", "finite number"),
    ("--budget-usd", "-0.5", "greater than 0"),
])
def test_a_budget_must_be_a_positive_finite_number(flag: str, value: str, problem: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    message = refused([*DEMO, "--model", f"scripted:{SCRIPT}", flag, value], capsys)
    assert message.startswith(f"invalid option: {flag} ") and problem in message


def test_an_endpoint_answering_a_web_page_is_named_as_the_wrong_base_url(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    login_page = "<!doctype html><html><head><title>Sign in to the proxy</title></head><body>...</body></html>"
    with FakeOpenAIServer([], failures=[Failure(200, html=login_page)]) as server:
        base_url = server.base_url
        message = refused([*DEMO, "--model", "openai:some-model", "--base-url", base_url, "--out", tmp_path / "out"],
                          capsys)
    assert message == (f"the endpoint at {base_url} answered an HTML page ('Sign in to the proxy') instead "
                       "of a chat completion for 'some-model': set --base-url / OPENAI_BASE_URL to the API's URL "
                       "(it usually ends in /v1)")


CRASH_SWEEP_S = 2.0


class RendererKiller(BaseHTTPRequestHandler):
    """Serves a page with a link to /crash; a request for /crash kills this process's Chromium renderers."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/crash":
            # Kill renderers for a while, not once: under load Chromium may start the navigation's
            # renderer only after a first sweep, and the tab would live on in it.
            deadline = time.monotonic() + CRASH_SWEEP_S
            while time.monotonic() < deadline:
                for process in psutil.Process().children(recursive=True):
                    try:
                        if "--type=renderer" in process.cmdline():
                            process.kill()
                    except psutil.Error:  # gone already
                        continue
                time.sleep(0.05)
            return  # no answer: the tab that asked is dead
        body = b'<title>Start</title><a href="/crash">Go on</a>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_renderer_crash_after_a_click_is_told_as_a_later_step_not_the_start_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RendererKiller)
    # server_close() waits for the handler: its sweep must not outlive this test and kill the next one's tab.
    server.daemon_threads = False
    Thread(target=server.serve_forever, daemon=True).start()
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"policy": [candidates("click('e1')"), candidates("send_msg_to_user('done')")]}))
    try:
        message = refused(["run", "--url", f"http://127.0.0.1:{server.server_port}/", "--goal", "go on",
                           "--strategy", "reactive", "--model", f"scripted:{script}", "--out", tmp_path / "out"],
                          capsys, code=1)  # 1: the run failed, not through the user's doing
    finally:
        server.shutdown()
        server.server_close()
    task_id = f"127.0.0.1-{server.server_port}"  # named after the URL
    task_dir = tmp_path / "out" / task_id
    assert message.startswith(f"the browser failed in step 1 of task {task_id}, after the start page had opened: ")
    assert "start page of task" not in message
    assert message.endswith(f"the run so far is recorded in {task_dir} (`forethought show {task_dir}`)")
    assert json.loads((task_dir / "result.json").read_text())["stop_reason"] == "error"


def test_replaying_a_trace_whose_site_is_gone_says_to_start_it(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    site = ThreadingHTTPServer(("127.0.0.1", 0), StartPage)
    Thread(target=site.serve_forever, daemon=True).start()
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"policy": [candidates("send_msg_to_user('done')")]}))
    try:
        assert main(["run", "--url", f"http://127.0.0.1:{site.server_port}/", "--goal", "look", "--strategy",
                     "reactive", "--model", f"scripted:{script}", "--out", str(tmp_path / "out")]) == 0
    finally:
        site.shutdown()
        site.server_close()
    capsys.readouterr()
    message = refused(["replay", tmp_path / "out"], capsys)
    assert "could not open the start page" in message and message.endswith("then replay again")


class StartPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<title>Start</title><p>Hello</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
