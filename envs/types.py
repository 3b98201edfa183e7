"""The data every layer shares: what the agent sees (Observation) and what a task is (Task)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


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

    id: str

    async def setup(self, context: Any, page: Any) -> str: ...

    async def validate(self, page: Any, answer: str | None) -> tuple[float, bool, dict[str, Any]]: ...

    async def teardown(self) -> None: ...

    async def reset_state(self) -> bool:
        """Put the task's own state (a local site's database) back to pristine; return False when the
        task has no state it can reset (then nothing is done)."""
        ...
