"""What `forethought run` shows while it runs, and how `eval`'s summary is printed.

During a step: which model calls are in flight (agent/llm/activity.py: proposing, imagining 2 of 3,
scoring, revising, ...) with how long they and the step have taken; then the step's own lines as it ends.
When stderr is a terminal that is one live line there, drawn by rich and gone when the run ends. Otherwise,
so that CI logs stay readable, it is a plain line among the steps' lines each time a stage begins, and
nothing more: no control characters, no redrawing, and stderr keeps only what went wrong.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from agent.evaluation.summary import format_table, table_rows
from agent.llm.activity import Stage


class RunDisplay:
    """A context manager (sync or async) around a run: pass `step` as run_task's on_step, and `calls` as the
    listener of the LLM's CallActivity. A step's lines, and the plain stage lines, go to `lines` (print:
    stdout)."""

    def __init__(self, lines: Callable[[str], None] = print) -> None:
        self.lines = lines
        self.live_line = sys.stderr.isatty()
        self.stages: tuple[Stage, ...] = ()
        self.step_started = time.monotonic()
        self.live: Live | None = None
        self.spinner = Spinner("dots")

    def __enter__(self) -> RunDisplay:
        if self.live_line:
            # Lines printed meanwhile go above the live one; stdout only when it is this terminal too.
            self.live = Live(self, console=Console(file=sys.stderr), refresh_per_second=8, transient=True,
                             redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
            self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()

    async def __aenter__(self) -> RunDisplay:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(kind, exc, tb)

    def step(self, text: str) -> None:
        """A step has ended: its lines (flushed, so that in a log they come before the next step's stages)."""
        self.lines(text)
        sys.stdout.flush()
        self.step_started = time.monotonic()

    def calls(self, stages: tuple[Stage, ...]) -> None:
        """The calls in flight have changed."""
        begun = {(s.name, s.since) for s in stages} - {(s.name, s.since) for s in self.stages}
        self.stages = stages
        if begun and not self.live_line:
            self.lines(f"  ... {time.monotonic() - self.step_started:.1f} s  {', '.join(map(str, stages))}")
            sys.stdout.flush()

    def __rich__(self) -> Any:
        """The live line, redrawn by rich a few times a second: so the seconds count up."""
        now = time.monotonic()
        doing = "  ·  ".join(f"{stage}  {now - stage.since:.1f} s" for stage in self.stages) or "between model calls"
        line = Table.grid(padding=(0, 1))
        line.add_row(self.spinner, Text(doing, style="bold"), Text(f"(step {now - self.step_started:.0f} s)",
                                                                      style="dim"))
        return line


def print_summary(summary: dict[str, Any]) -> None:
    """`eval`'s summary: a rich table on a terminal, else the plain one (agent/evaluation/summary.py)."""
    if not sys.stdout.isatty():
        print(format_table(summary))
        return
    title, header, rows, notes = table_rows(summary)
    table = Table(title=title, title_justify="left")
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(Group(table, *(Text(note, style="dim") for note in notes)))
