"""Live progress (issue #17): `forethought run` says which model call is in flight while it is, and `eval`
shows 0/N before its first task ends and a table at the end; plain lines when the output is not a terminal.

Each test drives the real CLI as a subprocess against a fake OpenAI endpoint whose answers are held until
the test lets them go, so a line read before that was printed while the call it names was still pending."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import queue
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.llm.fake_server import FakeOpenAIServer
from tests.agent.answers import candidates

ROOT = Path(__file__).resolve().parents[3]
WIDGETS = ROOT / "tests" / "pages" / "widgets.html"
WAIT_S = 120  # only a bound for a broken run: nothing here is timed
ANSWERS = {  # by the title of the schema a call asks for
    "candidates": candidates("click('e2')", "fill('e3', 'hi')"),
    "prediction": json.dumps({"changes": "the button is pressed", "url": "", "appear": [], "disappear": []}),
    "verdict": json.dumps({"reason": "it may help", "verdict": "on track"}),
}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class HeldModel:
    """A fake endpoint answering each call by its schema, but only once the test has let that schema's
    answers go (`release`)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.gates = {title: threading.Event() for title in answers}
        self.answered: list[str] = []
        self.server = FakeOpenAIServer(answers=self.answer)

    def answer(self, body: dict[str, Any]) -> str:
        title = body["response_format"]["json_schema"]["name"]
        self.gates[title].wait(WAIT_S)
        self.answered.append(title)
        return self.answers[title]

    def release(self, title: str) -> None:
        self.gates[title].set()

    def release_all(self) -> None:
        for gate in self.gates.values():
            gate.set()

    def requests(self, title: str) -> int:
        return sum(body["response_format"]["json_schema"]["name"] == title for body in self.server.chat_requests)


class Lines:
    """A stream's text as it arrives, read on a thread."""

    def __init__(self, read: Callable[[], str]) -> None:
        self.chunks: queue.Queue[str] = queue.Queue()
        self.text = ""
        self.pump = threading.Thread(target=self._pump, args=(read,), daemon=True)
        self.pump.start()

    def _pump(self, read: Callable[[], str]) -> None:
        while chunk := read():
            self.chunks.put(chunk)

    def all(self) -> str:
        """The whole text, once the stream has ended."""
        self.pump.join(WAIT_S)
        while not self.chunks.empty():
            self.text += self.chunks.get()
        return self.text

    def wait_for(self, pattern: str) -> str:
        """The first match of `pattern` in the text so far (escape sequences removed), waiting for it."""
        while (found := re.search(pattern, ANSI.sub("", self.text))) is None:
            try:
                self.text += self.chunks.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"{pattern!r} never came; the output so far:\n{self.text}") from None
        return found.group(0)


def ended(run: subprocess.Popen[str]) -> str:
    """What `run` printed on stdout, once it has ended."""
    assert run.stdout is not None
    out = run.stdout.read()
    run.wait(WAIT_S)
    return out


def forethought(*args: object, stdout: int | None = subprocess.PIPE, stderr: int | None = subprocess.PIPE,
                **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "agent.cli", *map(str, args)], cwd=ROOT, text=True,
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            env={**os.environ, "FORETHOUGHT_CACHE_DIR": os.environ.get("FORETHOUGHT_CACHE_DIR", ""),
                                 **env})


@contextmanager
def held_model(answers: dict[str, str] = ANSWERS) -> Iterator[HeldModel]:
    model = HeldModel(answers)
    with model.server:
        try:
            yield model
        finally:
            model.release_all()  # a failed test must not leave the run waiting


def dreamer_run(model: HeldModel, out: Path, stderr: int | None = subprocess.PIPE, **env: str) -> subprocess.Popen[str]:
    return forethought("run", "--url", WIDGETS, "--goal", "Press the native button.", "--strategy", "dreamer",
                       "-k", "2", "--samples", "1", "--max-steps", "1", "--no-screenshots", "--model", "openai:fake",
                       "--base-url", model.server.base_url, "--out", out, stderr=stderr, **env)


def test_run_prints_each_stage_while_its_calls_are_in_flight_as_plain_lines(tmp_path: Path) -> None:
    with held_model() as model:
        run = dreamer_run(model, tmp_path / "run")
        assert run.stdout is not None and run.stderr is not None
        out = Lines(run.stdout.readline)
        out.wait_for(r"proposing")
        assert model.answered == []  # the line came while the proposal was still being waited for
        model.release("candidates")
        out.wait_for(r"imagining 1 of 2")
        assert model.answered == ["candidates"]
        model.release("prediction")
        out.wait_for(r"scoring 1 of 2")
        assert "verdict" not in model.answered
        model.release("verdict")
        run.wait(WAIT_S)
    assert run.returncode == 0 and run.stderr.read() == ""  # stderr keeps only what went wrong
    lines = out.all().splitlines()
    stages = [line for line in lines if line.startswith("  ... ")]
    assert [re.sub(r"^  \.\.\. [\d.]+ s  ", "", line) for line in stages] == \
        ["proposing", "imagining 1 of 2", "scoring 1 of 2"]  # one line per stage, none per answer
    step = next(i for i, line in enumerate(lines) if line.startswith("step 1 "))
    assert lines.index(stages[-1]) < step  # in order: the stages, then the step's lines
    assert any(line.startswith("  chose click('e2')") for line in lines)
    assert any(line.startswith("finished:") for line in lines)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out.all())  # no control characters: CI logs stay readable


class Terminal:
    """A pseudo-terminal of 120 columns for a run's output, read on a thread."""

    def __init__(self) -> None:
        self.reader, self.fd = pty.openpty()
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

    def started(self) -> Lines:
        """Once the run holds the terminal: what it draws there."""
        os.close(self.fd)

        def read() -> str:
            try:
                return os.read(self.reader, 4096).decode(errors="replace")
            except OSError:  # the run has ended and closed the terminal
                return ""

        return Lines(read)


def test_run_on_a_terminal_draws_the_stage_in_flight_live(tmp_path: Path) -> None:
    terminal = Terminal()
    with held_model() as model:
        run = dreamer_run(model, tmp_path / "run", stderr=terminal.fd, TERM="xterm-256color")
        err = terminal.started()
        err.wait_for(r"proposing +\d+\.\d s")
        assert model.answered == []
        model.release("candidates")
        err.wait_for(r"imagining 1 of 2")
        model.release_all()
        out = ended(run)
    assert run.returncode == 0, err.all()
    assert "\x1b[" in err.all()  # drawn in place
    assert "step 1" in out and "\x1b" not in out  # stdout is not the terminal: its lines stay plain


def test_eval_on_a_terminal_draws_a_bar_from_0_of_n_and_ends_with_a_table(tmp_path: Path) -> None:
    terminal = Terminal()
    with held_model({"candidates": candidates("send_msg_to_user('done')")}) as model:
        run = forethought("eval", "--suite", "miniwob", "--tasks", "click-test,click-button", "--strategy", "reactive",
                          "--max-steps", "1", "--no-screenshots", "--model", "openai:fake",
                          "--base-url", model.server.base_url, "--out", tmp_path / "eval", stdout=terminal.fd,
                          stderr=terminal.fd, TERM="xterm-256color")
        shown = terminal.started()
        shown.wait_for(r"0/2 +success - .*eta \?")
        assert model.answered == []
        model.release("candidates")
        run.wait(WAIT_S)
    assert run.returncode == 0, shown.all()
    shown.wait_for(r"2/2 +success \d+%")
    shown.wait_for(r"┃ strategy +┃ +tasks ┃")  # the summary as a drawn table
    shown.wait_for(r"│ reactive +│ +2 │")


def test_eval_shows_0_of_n_before_the_first_task_ends_and_a_table_at_the_end(tmp_path: Path) -> None:
    out_dir = tmp_path / "eval"
    with held_model({"candidates": candidates("send_msg_to_user('done')")}) as model:
        run = forethought("eval", "--suite", "miniwob", "--tasks", "click-test,click-button", "--strategy", "reactive",
                          "--max-steps", "1", "--no-screenshots", "--model", "openai:fake",
                          "--base-url", model.server.base_url, "--out", out_dir)
        assert run.stderr is not None
        err = Lines(run.stderr.readline)
        err.wait_for(r"\] 0/2 ")
        results = out_dir / "results.jsonl"
        assert model.answered == [] and not (results.is_file() and results.read_text())  # no task has ended
        model.release("candidates")
        out = ended(run)
    assert run.returncode == 0, err.all()
    progress = [line for line in err.all().splitlines() if line.startswith("[")]
    assert [re.search(r"\] (\d/2) ", line).group(1) for line in progress] == ["0/2", "1/2", "2/2"]
    assert "success" in progress[-1] and "eta" in progress[-1]
    assert "\x1b" not in err.all() + out
    table = out.splitlines()
    assert table[0] == "miniwob suite, planner agent" and table[1].split()[:3] == ["strategy", "tasks", "success"]
    assert table[3].split()[:2] == ["reactive", "2"]
