"""A GitLab-like code host (WebArena's "gitlab" site): projects, issues with labels and assignees,
merge requests, members and roles, stars, on a seeded SQLite database."""
from __future__ import annotations

from typing import Any

# (username, password, role) accounts a task can log in with. Other seeded users share the password
# "gitlab-pass-2023"; "admin" accounts may change every project.
ACCOUNTS: list[tuple[str, str, str]] = [
    ("byteblaze", "hello1234", "user"),
    ("alex.chen", "hello1234", "user"),
    ("root", "admin1234", "admin"),
]


async def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Log a Playwright page in (see app.login); here too because the site server looks it up on
    the package. Imported lazily so that reading ACCOUNTS does not load the web app."""
    from envs.sites.gitlab.app import login as login_through_the_form

    await login_through_the_form(page, base_url, username, password)
