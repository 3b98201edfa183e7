"""Fixtures shared by the planner tests."""
from __future__ import annotations

from typing import Any

import pytest

from envs.browser import BrowserSession
from envs.env import BrowserEnv


@pytest.fixture(scope="module")
async def env() -> Any:
    """One real headless browser per test module; each test resets it with its own task."""
    browser_env = BrowserEnv(await BrowserSession().start())
    yield browser_env
    await browser_env.close()
