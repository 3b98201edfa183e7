"""A Postmill/Reddit-like forum (WebArena's "reddit" site): subforums, posts, threaded comments,
votes, subscriptions, user pages and search, on a seeded SQLite database."""
from __future__ import annotations

from typing import Any

# (username, password, role) accounts a task can log in with; all other seeded users share
# the password "forum-pass-2023" so the data stays realistic without being a login target.
ACCOUNTS: list[tuple[str, str, str]] = [
    ("MarvelsGrantMan136", "test1234", "user"),
    ("book_worm_jen", "test1234", "user"),
    ("forum_admin", "admin1234", "admin"),
]


async def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Log a Playwright page in (see app.login); here too because the site server looks it up on
    the package. Imported lazily so that reading ACCOUNTS does not load the web app."""
    from envs.sites.forum.app import login as login_through_the_form

    await login_through_the_form(page, base_url, username, password)
