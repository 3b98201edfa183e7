"""The data every layer shares: what the agent sees (Observation) and what a task is (Task), and how an
error is told in one line."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


def first_line(exc: BaseException) -> str:
    """What went wrong, in one line: Playwright's messages go on with a multi-line call log."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


PASSWORD_MASK = "********"  # a filled password field's value as envs/js/observe.js shows it, never its text


@dataclass
class Element:
    """One node of the element tree. Interactive nodes carry an `id` the agent can act on."""

    id: str | None  # short stable id ("e12", "f1e3" inside a frame); None for plain text/structure
    role: str  # ARIA-ish role: link, button, textbox, checkbox, option, heading, text, ...
    name: str  # accessible name or visible text
    depth: int = 0  # nesting depth in the rendered tree
    value: str | None = None  # current value of inputs, selects, textareas, contenteditable
    states: list[str] = field(default_factory=list)  # checked, selected, disabled, expanded, ...
    offscreen: bool = False  # outside the viewport (scroll to reach it)
    tag: str = ""

    @property
    def interactive(self) -> bool:
        return self.id is not None


@dataclass
class Tab:
    index: int
    url: str
    title: str
    active: bool


@dataclass
class Observation:
    url: str
    title: str
    tabs: list[Tab] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)
    focused_id: str | None = None
    last_action_error: str | None = None
    html: str | None = None  # pruned HTML, when asked for
    screenshot: bytes | None = None  # PNG, when asked for

    def ids(self) -> set[str]:
        return {e.id for e in self.elements if e.id is not None}

    def element(self, element_id: str) -> Element | None:
        return next((e for e in self.elements if e.id == element_id), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("screenshot")
        return data


@runtime_checkable
class Task(Protocol):
    """A task in BrowserGym's shape: set the page up, then judge it.

    `setup` opens the start page(s) and returns the goal in words; `validate` reads the page (and the
    agent's answer, if it gave one) and returns (reward, done, info); `reset_state` undoes what the
    agent did to the task's own state, for search that backtracks for real.
    """

    @property
    def id(self) -> str: ...  # read-only: a dataclass field or a property both satisfy it

    async def setup(self, context: Any, page: Any) -> str: ...

    async def validate(self, page: Any, answer: str | None) -> tuple[float, bool, dict[str, Any]]: ...

    async def teardown(self) -> None: ...

    async def reset_state(self) -> bool:
        """Put the task's own state (a local site's database) back to pristine; return False when the
        task has no state it can reset (then nothing is done)."""
        ...


class Env(Protocol):
    """The world the agent acts in, Gymnasium-shaped: `reset(task) -> (obs, info)`,
    `step(action) -> (obs, reward, terminated, truncated, info)`. A failed action becomes
    `last_action_error` of the next observation, never an exception. envs/env.py's BrowserEnv is the
    one that ships; what else the agent asks of it is what it must record about the run."""

    async def reset(self, task: Task) -> tuple[Observation, dict[str, Any]]: ...

    async def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]: ...

    async def close(self) -> None: ...

    def secret_values(self) -> list[str]:
        """Values that must never be written to a run directory (the task's secrets)."""
        ...

    def blocked_urls(self) -> list[str]:
        """Requests kept from leaving the task's allowed origins since the last reset."""
        ...

    async def screenshot(self, path: str) -> dict[str, list[int]] | None:
        """The current tab as a PNG file at `path`; raises when there is no picture to take. Returns
        where the elements with ids are on it ({id: [x, y, width, height]} in its pixels), if known."""
        ...

    async def finish_recordings(self) -> list[str]:
        """Complete the task's browser recordings (Playwright trace, HAR), which need their context
        closed; returns the files written, for secrets to be masked in them."""
        ...
