"""A WebArena task as an envs Task: open the start page(s), then score the final answer and page."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.webarena.config import TaskConfig, TaskConfigError
from envs.webarena.evaluators import Judge, evaluate
from envs.webarena.program_html import DEFAULT_PAGE_WAIT_SECONDS, Helper

# Sets the saved localStorage of one origin when a page of that origin starts loading.
_LOCAL_STORAGE_SCRIPT = """(() => {
  const saved = %s;
  const items = saved[window.location.origin];
  if (!items) return;
  for (const item of items) window.localStorage.setItem(item.name, item.value);
})();"""


def load_storage_state(config: TaskConfig, base_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The task's Playwright storage state (cookies, localStorage), or None if it has none.
    A relative path is read from `base_dir` (default: the current directory), as WebArena does."""
    if not config.storage_state:
        return None
    path = Path(config.storage_state)
    if not path.is_absolute():
        path = Path(base_dir or Path.cwd()) / path
    if not path.is_file():
        raise TaskConfigError(
            f"task {config.task_id}: storage_state {config.storage_state!r} not found at {path}; log in to "
            f"{', '.join(config.sites) or 'the site'} and save the state with Playwright's "
            "context.storage_state(path=...), or pass auth_dir= where the .auth files are"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskConfigError(f"task {config.task_id}: storage_state {path} is not valid JSON ({exc})") from exc
    if not isinstance(state, dict) or not isinstance(state.get("cookies", []), list):
        raise TaskConfigError(f"task {config.task_id}: storage_state {path} is not a Playwright storage state "
                              '({"cookies": [...], "origins": [...]})')
    return state


async def apply_storage_state(context: Any, state: Mapping[str, Any]) -> None:
    """Give an already-created context the cookies and localStorage of a storage state.
    (Playwright only takes a storage state when a context is created; this is the same effect.)"""
    cookies = list(state.get("cookies") or [])
    if cookies:
        await context.add_cookies(cookies)
    saved = {o["origin"]: o.get("localStorage", []) for o in state.get("origins") or [] if o.get("localStorage")}
    if saved:
        await context.add_init_script(script=_LOCAL_STORAGE_SCRIPT % json.dumps(saved))


@dataclass
class WebArenaTask:
    """One WebArena task. `setup` opens its start URL(s) — one tab each, the first one active — after
    applying its storage state; `validate` scores once the agent has answered."""

    config: TaskConfig
    judge: Judge | None = None  # needed by fuzzy_match tasks
    helpers: Mapping[str, Helper] = field(default_factory=dict)  # extra program_html "func:" helpers
    wait_seconds: float = DEFAULT_PAGE_WAIT_SECONDS  # pause after program_html opens a page
    auth_dir: str | Path | None = None  # where relative storage_state paths are found
    last_evaluation: Any = None

    @property
    def id(self) -> str:
        return str(self.config.task_id)

    async def setup(self, context: Any, page: Any) -> str:
        self.config.require_resolved()
        self.last_evaluation = None
        state = load_storage_state(self.config, self.auth_dir)
        if state:
            await apply_storage_state(context, state)
        urls = list(self.config.start_urls)
        await page.goto(urls[0])
        for url in urls[1:]:
            tab = await context.new_page()
            await tab.goto(url)
        if len(urls) > 1:
            await page.bring_to_front()  # WebArena makes the first tab the current one
        return self.config.intent

    def allowed_origins(self) -> list[str]:
        """Where the agent may go (envs/guard.py): its start pages and every page its evaluators name,
        since a task may span sites (e.g. the shop and its admin)."""
        named: list[str] = []
        if self.config.eval is not None:
            named += self.config.eval.reference_url.split(" |OR| ")
            named += [target.url for target in self.config.eval.program_html]
        # A start page may be a local file (a task written against a saved page); "last" and "func:" are not URLs.
        return [*self.config.start_urls, *(url.strip() for url in named if url.strip().startswith(("http://", "https://")))]

    async def validate(self, page: Any, answer: str | None) -> tuple[float, bool, dict[str, Any]]:
        """(0, False, {}) until the agent answers; then the score of all evaluators and why.
        A runner that stops the agent (step limit) passes its own answer, e.g. "Early stop: ..."."""
        if answer is None:
            return 0.0, False, {}
        evaluation = await evaluate(self.config, page, answer, judge=self.judge, helpers=self.helpers,
                                    wait_seconds=self.wait_seconds)
        self.last_evaluation = evaluation
        return evaluation.score, True, {"evaluation": evaluation.to_dict()}

    async def teardown(self) -> None:
        return None

    async def reset_state(self) -> bool:
        return False  # a WebArena deployment is reset from outside (its containers), not by a task
