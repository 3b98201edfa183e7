"""MiniWoB++ tasks from the pages shipped in the PyPI package `miniwob`, driven through Playwright.

What the package does through Selenium, done here on a Playwright page: open the task page (file://),
seed the page's random generator, start an episode with a long time limit (an LLM step can take
minutes; the default 10 s would end most episodes), and read the reward the page's own checker sets.
"""
from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

# BrowserGym's MiniWoB++ benchmark, in its order: original 77, hidden test 18, debug 12, additional 12,
# nodelay 6. (The package ships five more pages, e.g. button-delay and simon-says, that no benchmark uses.)
MINIWOB_TASKS: tuple[str, ...] = (
    "ascending-numbers", "bisect-angle", "book-flight", "book-flight-nodelay", "buy-ticket",
    "choose-date", "choose-date-easy", "choose-date-medium", "choose-date-nodelay", "choose-list",
    "circle-center", "click-button", "click-button-sequence", "click-checkboxes",
    "click-checkboxes-large", "click-checkboxes-soft", "click-checkboxes-transfer", "click-collapsible",
    "click-collapsible-2", "click-collapsible-2-nodelay", "click-collapsible-nodelay", "click-color",
    "click-dialog", "click-dialog-2", "click-link", "click-menu", "click-menu-2", "click-option",
    "click-pie", "click-pie-nodelay", "click-scroll-list", "click-shades", "click-shape", "click-tab",
    "click-tab-2", "click-tab-2-easy", "click-tab-2-hard", "click-tab-2-medium", "click-test",
    "click-test-2", "click-test-transfer", "click-widget", "copy-paste", "copy-paste-2", "count-shape",
    "count-sides", "daily-calendar", "drag-box", "drag-circle", "drag-cube", "drag-items",
    "drag-items-grid", "drag-shapes", "drag-shapes-2", "drag-single-shape", "drag-sort-numbers",
    "draw-circle", "draw-line", "email-inbox", "email-inbox-delete", "email-inbox-forward",
    "email-inbox-forward-nl", "email-inbox-forward-nl-turk", "email-inbox-important",
    "email-inbox-nl-turk", "email-inbox-noscroll", "email-inbox-reply", "email-inbox-star-reply",
    "enter-date", "enter-password", "enter-text", "enter-text-2", "enter-text-dynamic", "enter-time",
    "find-greatest", "find-midpoint", "find-word", "focus-text", "focus-text-2", "form-sequence",
    "form-sequence-2", "form-sequence-3", "generate-number", "grid-coordinate", "guess-number",
    "highlight-text", "highlight-text-2", "hot-cold", "identify-shape", "login-user",
    "login-user-popup", "multi-layouts", "multi-orderings", "navigate-tree", "number-checkboxes",
    "odd-or-even", "order-food", "phone-book", "read-table", "read-table-2", "resize-textarea",
    "right-angle", "scroll-text", "scroll-text-2", "search-engine", "sign-agreement", "simple-algebra",
    "simple-arithmetic", "social-media", "social-media-all", "social-media-some", "stock-market",
    "terminal", "text-editor", "text-transform", "tic-tac-toe", "unicode-test", "use-autocomplete",
    "use-autocomplete-nodelay", "use-colorwheel", "use-colorwheel-2", "use-slider", "use-slider-2",
    "use-spinner", "visual-addition",
)

TASK_ID_PREFIX = "miniwob."
DEFAULT_EPISODE_MAX_MS = 3_600_000
_MAX_TIMEOUT_MS = 2**31 - 1  # the largest delay setTimeout honours

# What the package's Selenium driver does, in one round trip: end a running episode (a no-op otherwise),
# seed, pick the training distribution, raise the time limit, start.
_START_EPISODE_JS = """({seed, maxMs}) => {
  core.endEpisode(0);
  Math.seedrandom(seed);
  core.setDataMode('train');
  core.EPISODE_MAX_TIME = maxMs;
  core.startEpisodeReal();
  window.__forethoughtEpisode = true;  // gone if the page reloads, which loses the episode
}"""

# The goal as text. Some tasks return {utterance, fields}; click-menu-2 shows some targets as an icon
# (an empty span), which plain textContent would drop, so an icon is spelled out by its class name.
_GOAL_JS = """() => {
  const query = document.getElementById('query');
  if (query && query.querySelector('.ui-icon')) {
    const copy = query.cloneNode(true);
    for (const icon of copy.querySelectorAll('.ui-icon')) {
      const cls = [...icon.classList].find(c => c.startsWith('ui-icon-')) || 'ui-icon-unknown';
      icon.replaceWith('"' + cls.slice('ui-icon-'.length) + '"');
    }
    return copy.textContent.replace(/\\s+/g, ' ').trim();
  }
  const utterance = core.getUtterance();
  return typeof utterance === 'string' ? utterance : utterance.utterance;
}"""

# The human display (last reward, a countdown that ticks every second, a click canvas) is not part of
# the task; hidden, it no longer shows up in observations as changing text.
_HIDE_DISPLAY_JS = """() => {
  const style = document.createElement('style');
  style.textContent = '#reward-display, #click-canvas { display: none !important; }';
  document.head.appendChild(style);
}"""

_STATE_JS = """() => window.__forethoughtEpisode !== true ? null : ({done: WOB_DONE_GLOBAL,
  reward: WOB_REWARD_GLOBAL, raw_reward: WOB_RAW_REWARD_GLOBAL, reason: WOB_REWARD_REASON})"""


def miniwob_html_dir() -> Path:
    """The directory of MiniWoB++ task pages (`html/miniwob`) inside the installed `miniwob` package.

    Every task of MINIWOB_TASKS lives there and runs from file:// (the package's html/flight pages,
    which need HTTP, back no task of the benchmark)."""
    spec = importlib.util.find_spec("miniwob")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the MiniWoB++ task pages come from the `miniwob` package: pip install miniwob")
    for location in spec.submodule_search_locations:
        pages = Path(location) / "html" / "miniwob"
        if pages.is_dir():
            return pages
    raise RuntimeError(
        "the installed `miniwob` package has no html/miniwob task pages; reinstall it: "
        "pip install --force-reinstall miniwob"
    )


def task_name(name: str) -> str:
    """A MiniWoB++ task name ('click-test' or 'miniwob.click-test'), checked against MINIWOB_TASKS."""
    bare = name.removeprefix(TASK_ID_PREFIX)
    if bare not in MINIWOB_TASKS:
        close = difflib.get_close_matches(bare, MINIWOB_TASKS, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see envs.miniwob.MINIWOB_TASKS"
        raise ValueError(f"unknown MiniWoB++ task {name!r}{hint}")
    return bare


class MiniWoBTask:
    """One MiniWoB++ episode: `setup` starts it with a seed and returns the utterance as the goal;
    `validate` reads the reward the page computed.

    reward is 1.0 when the page's raw reward is positive (BrowserGym's success), else 0.0; `info` holds
    raw_reward (+1/-1, partial for some tasks), the time-discounted reward, reason and success.
    """

    def __init__(self, name: str, seed: int = 0, episode_max_ms: int = DEFAULT_EPISODE_MAX_MS) -> None:
        if not 0 < episode_max_ms <= _MAX_TIMEOUT_MS:
            raise ValueError(f"episode_max_ms must be between 1 and {_MAX_TIMEOUT_MS}, got {episode_max_ms}")
        self.name = task_name(name)
        self.seed = seed
        self.episode_max_ms = episode_max_ms
        self.id = f"{TASK_ID_PREFIX}{self.name}.seed{seed}"
        self.url = (miniwob_html_dir() / f"{self.name}.html").as_uri()
        self._page: Page | None = None

    def allowed_origins(self) -> list[str]:
        """The pages' folder, html/: a task page loads ../core and ../common (envs/guard.py reads a
        file:// URL ending in / as that folder)."""
        return [miniwob_html_dir().parent.as_uri() + "/"]

    async def setup(self, context: Any, page: Page) -> str:
        self._page = page
        await page.goto(self.url)
        # core.startEpisode() (window.onload) puts up the cover; once it is there the page is ready.
        await page.wait_for_selector("#sync-task-cover", state="attached")
        await page.evaluate(_START_EPISODE_JS, {"seed": int(self.seed), "maxMs": self.episode_max_ms})
        await page.wait_for_function("() => WOB_TASK_READY")
        await page.evaluate(_HIDE_DISPLAY_JS)
        goal = await page.evaluate(_GOAL_JS)
        if not goal:
            raise RuntimeError(f"MiniWoB++ task {self.name} (seed {self.seed}) produced an empty goal")
        return goal

    async def validate(self, page: Any, answer: str | None) -> tuple[float, bool, dict[str, Any]]:
        # The reward lives on the task's own tab, whichever tab the agent has in front.
        task_page = self._page
        if task_page is None:
            raise RuntimeError("MiniWoBTask.validate() called before setup()")
        if task_page.is_closed():
            return 0.0, True, _failure("the task's tab was closed")
        if task_page.url.split("#")[0] != self.url:
            return 0.0, True, _failure(f"the task's tab left the task page for {task_page.url}")
        try:
            state = await task_page.evaluate(_STATE_JS)
        except PlaywrightError as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return 0.0, True, _failure(f"could not read the task's reward: {first_line}")
        if state is None:
            return 0.0, True, _failure("the task page was reloaded, which ended its episode")
        raw_reward = float(state["raw_reward"])
        done = bool(state["done"])
        success = done and raw_reward > 0
        info = {
            "raw_reward": raw_reward,
            "reward": float(state["reward"]),
            "reason": state["reason"],
            "success": success,
        }
        return (1.0 if success else 0.0), done, info

    async def teardown(self) -> None:
        self._page = None

    async def reset_state(self) -> bool:
        return False  # an episode's state lives in its page only; setup starts a fresh one


def _failure(reason: str) -> dict[str, Any]:
    return {"raw_reward": 0.0, "reward": 0.0, "reason": reason, "success": False}
