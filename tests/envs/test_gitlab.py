"""The local code-hosting site (WebArena's "gitlab"): seed data, lists and filters, permissions, and
every state change, checked on the pages an evaluator would read."""
from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from bs4 import BeautifulSoup
from starlette.testclient import TestClient

from envs.browser import BrowserSession
from envs.sites.gitlab import ACCOUNTS
from envs.sites.gitlab.app import create_app, login
from envs.sites.gitlab.seed import seed

USER, PASSWORD, _ = ACCOUNTS[0]  # byteblaze: owns the byteblaze/* projects
OWN_PROJECT = "/byteblaze/dotfiles"


@pytest.fixture(scope="module")
def pristine_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gitlab") / "pristine.db"
    seed(path)
    return path


@pytest.fixture
def db_path(pristine_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "gitlab.db"  # each test changes its own copy, as after a reset
    shutil.copy(pristine_db, path)
    return path


@pytest.fixture
def client(db_path: Path) -> TestClient:
    return TestClient(create_app(db_path))


def sign_in(client: TestClient, username: str = USER, password: str = PASSWORD) -> None:
    response = client.post("/users/sign_in", data={"username": username, "password": password})
    assert "/users/sign_in" not in str(response.url), "sign in failed"


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "lxml")


def query(db_path: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def project_where(db_path: Path, username: str, level_sql: str) -> str:
    """The first project (as /ns/path) whose membership of username satisfies level_sql, e.g. 'IS NULL'."""
    rows = query(db_path, f"""SELECT p.namespace || '/' || p.path FROM projects p
        LEFT JOIN members m ON m.project_id = p.id AND m.user_id = (SELECT id FROM users WHERE username = ?)
        WHERE m.access_level {level_sql} ORDER BY p.id LIMIT 1""", username)
    return "/" + rows[0][0]


def issue_titles(page: BeautifulSoup) -> list[str]:
    return [a.get_text() for a in page.select(".issues-list .issue-title")]


# --- seed -------------------------------------------------------------------------------------------

def test_seed_is_deterministic_and_realistically_sized(tmp_path, pristine_db):
    again = tmp_path / "again.db"
    seed(again)
    dump = lambda path: list(sqlite3.connect(path).iterdump())  # noqa: E731
    assert dump(again) == dump(pristine_db)
    count = lambda table: query(pristine_db, f"SELECT COUNT(*) FROM {table}")[0][0]  # noqa: E731
    assert count("projects") == 25 and count("issues") == 300
    assert 70 <= count("merge_requests") <= 100 and count("notes") > 300 and count("users") >= 40
    states = dict(query(pristine_db, "SELECT state, COUNT(*) FROM issues GROUP BY state"))
    assert states["opened"] > 100 and states["closed"] > 60
    assert {row[0] for row in query(pristine_db, "SELECT DISTINCT state FROM merge_requests")} == {
        "opened", "merged", "closed"}
    assert len({row[0] for row in query(pristine_db, "SELECT DISTINCT access_level FROM members")}) == 5


# --- reading ------------------------------------------------------------------------------------------

def test_project_lists_sort_and_search(client, db_path):
    page = soup(client.get("/explore/projects?sort=stars"))
    stars = [int(td.get_text()) for td in page.select(".projects-list .star-count")]
    assert len(stars) == 20 and stars == sorted(stars, reverse=True)
    assert page.select_one("a[rel=next]")["href"] == "/explore/projects?sort=stars&page=2"
    rows = soup(client.get("/explore/projects?search=lintkit")).select(".project-row")
    assert [row["data-project"] for row in rows] == ["openkit/lintkit"]
    project = soup(client.get("/openkit/lintkit"))
    assert project.select_one(".project-description").get_text() == query(
        db_path, "SELECT description FROM projects WHERE path = 'lintkit'")[0][0]
    assert [li.get_text() for li in project.select(".breadcrumbs li")] == ["openkit", "lintkit"]


def test_issue_list_filters_by_state_label_and_assignee(client, db_path):
    base = "/openkit/lintkit/-/issues"
    project_issues = """SELECT i.title FROM issues i JOIN projects p ON p.id = i.project_id
                        WHERE p.path = 'lintkit' {extra} ORDER BY i.created_at DESC"""
    closed = soup(client.get(f"{base}?state=closed"))
    assert issue_titles(closed) == [r[0] for r in query(db_path, project_issues.format(extra="AND i.state = 'closed'"))]
    assert {li["data-state"] for li in closed.select(".issue")} == {"closed"}
    tab = closed.select_one(".issues-state-filters a[data-state=opened] .badge-count")
    assert int(tab.get_text()) == len(query(db_path, project_issues.format(extra="AND i.state = 'opened'")))
    label, = query(db_path, """SELECT l.name FROM labels l JOIN issue_labels il ON il.label_id = l.id
        JOIN issues i ON i.id = il.issue_id JOIN projects p ON p.id = i.project_id WHERE p.path = 'lintkit'
        GROUP BY l.name ORDER BY COUNT(*) DESC, l.name LIMIT 1""")[0]
    labelled = soup(client.get(base, params={"state": "all", "label_name[]": label}))
    expected = query(db_path, project_issues.format(extra="""AND EXISTS (SELECT 1 FROM issue_labels il
        JOIN labels l ON l.id = il.label_id WHERE il.issue_id = i.id AND l.name = ?)"""), label)
    assert issue_titles(labelled) == [r[0] for r in expected] and expected
    assert all(label in [s.get_text() for s in li.select(".gl-label")] for li in labelled.select(".issue"))
    assignee = query(db_path, """SELECT u.username FROM issue_assignees a JOIN users u ON u.id = a.user_id
        JOIN issues i ON i.id = a.issue_id JOIN projects p ON p.id = i.project_id WHERE p.path = 'lintkit'
        LIMIT 1""")[0][0]
    assigned = soup(client.get(base, params={"state": "all", "assignee_username": assignee}))
    assert issue_titles(assigned) and all(
        assignee in [a["data-username"] for a in li.select(".assignee")] for li in assigned.select(".issue"))


def test_dashboard_issues_for_an_assignee(client, db_path):
    sign_in(client)
    person = "alex.chen"
    expected = query(db_path, """SELECT i.title FROM issues i JOIN issue_assignees a ON a.issue_id = i.id
        JOIN users u ON u.id = a.user_id WHERE u.username = ? AND i.state = 'opened'
        ORDER BY i.created_at DESC, i.id DESC""", person)
    page = soup(client.get(f"/dashboard/issues?assignee={person}"))
    assert issue_titles(page) == [r[0] for r in expected][:20] and expected
    assert page.select_one(".filter-assignee").get_text() == person
    mine = soup(client.get("/dashboard/issues"))  # defaults to the signed-in user
    assert mine.select_one(".filter-assignee").get_text() == USER


def test_issue_and_merge_request_pages_show_their_state(client, db_path):
    title, state, iid = query(db_path, """SELECT i.title, i.state, i.iid
                                         FROM issues i JOIN projects p ON p.id = i.project_id
                                         WHERE p.path = 'lintkit' AND i.iid = 2""")[0]
    page = soup(client.get(f"/openkit/lintkit/-/issues/{iid}"))
    assert page.select_one("h1.issue-title").get_text() == title
    assert page.select_one(".issuable-status")["data-state"] == state
    mr_title, source = query(db_path, """SELECT m.title, m.source_branch FROM merge_requests m
        JOIN projects p ON p.id = m.project_id WHERE p.path = 'lintkit' AND m.iid = 1""")[0]
    mr = soup(client.get("/openkit/lintkit/-/merge_requests/1"))
    assert mr.select_one("h1.mr-title").get_text() == mr_title
    assert mr.select_one(".mr-branches .source-branch").get_text() == source


def test_unknown_pages_are_real_404_pages(client):
    for url in ("/no-such-group", "/openkit/no-such-project", "/openkit/lintkit/-/issues/9999",
                "/openkit/lintkit/-/merge_requests/9999", "/openkit/lintkit/-/wiki"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert soup(response).select_one("h1.error-title").get_text() == "404: Not Found"


def test_search_finds_projects_issues_and_merge_requests(client, db_path):
    page = soup(client.get("/search?search=cache"))
    expected = query(db_path, "SELECT COUNT(*) FROM issues WHERE title LIKE '%cache%' OR description LIKE '%cache%'")
    assert len(page.select(".search-issues .issue")) == expected[0][0] > 0
    assert all("cache" in a.get_text().lower() for a in page.select(".search-merge-requests .merge-request-title"))


# --- signing in and permissions --------------------------------------------------------------------------

def test_sign_in_rejects_a_wrong_password_and_accepts_the_right_one(client):
    bad = client.post("/users/sign_in", data={"username": USER, "password": "nope"})
    assert bad.status_code == 401 and "Invalid login or password." in bad.text
    good = client.post("/users/sign_in", data={"username": USER, "password": PASSWORD,
                                               "redirect_to": "/openkit/lintkit"})
    assert str(good.url).endswith("/openkit/lintkit")
    assert soup(good).select_one(".current-user")["data-username"] == USER


def test_changes_need_a_sign_in(client, db_path):
    before = query(db_path, "SELECT COUNT(*), SUM(state = 'closed') FROM issues")
    for url, data in [(f"{OWN_PROJECT}/-/issues/new", {"title": "Anonymous issue"}),
                      (f"{OWN_PROJECT}/-/issues/1/close", {}),
                      (f"{OWN_PROJECT}/-/issues/1/notes", {"note": "anonymous"}),
                      (f"{OWN_PROJECT}/-/star", {}),
                      (f"{OWN_PROJECT}/-/project_members", {"username": "mei.lin", "access_level": "Guest"})]:
        response = client.post(url, data=data, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/users/sign_in"), url
    assert query(db_path, "SELECT COUNT(*), SUM(state = 'closed') FROM issues") == before
    assert not query(db_path, "SELECT 1 FROM notes WHERE body = 'anonymous'")


def test_non_members_cannot_change_a_project(client, db_path):
    project = project_where(db_path, USER, "IS NULL")
    sign_in(client)
    issue_state = query(db_path, """SELECT i.iid, i.state FROM issues i JOIN projects p ON p.id = i.project_id
        WHERE '/' || p.namespace || '/' || p.path = ? AND i.author_id != (SELECT id FROM users WHERE username = ?)
        ORDER BY i.iid LIMIT 1""", project, USER)[0]
    iid = issue_state[0]
    forbidden = [(f"{project}/-/issues/{iid}/{'reopen' if issue_state[1] == 'closed' else 'close'}", {}),
                 (f"{project}/-/issues/{iid}/labels", {"label_name": "bug"}),
                 (f"{project}/-/issues/{iid}/assignees", {"assignee_username": USER}),
                 (f"{project}/-/merge_requests/new",
                  {"title": "x", "source_branch": "develop", "target_branch": "main"}),
                 (f"{project}/-/project_members", {"username": USER, "access_level": "Owner"}),
                 (f"{project}/edit", {"description": "defaced"})]
    snapshot = lambda: [query(db_path, f"SELECT * FROM {t}") for t in (  # noqa: E731
        "issues", "issue_labels", "issue_assignees", "merge_requests", "members", "projects")]
    before = snapshot()
    for url, data in forbidden:
        response = client.post(url, data=data)
        assert response.status_code == 403, url
        assert "not allowed" in soup(response).select_one(".error-message").get_text()
    assert snapshot() == before
    page = soup(client.get(f"{project}/-/issues/{iid}"))
    assert page.select_one(".btn-close-reopen") is None and page.select_one("#add-label") is None
    # Any signed-in user may still report an issue and comment, as on a public GitLab project.
    created = client.post(f"{project}/-/issues/new", data={"title": "Outsider report", "description": "hi"})
    assert soup(created).select_one("h1.issue-title").get_text() == "Outsider report"


def test_maintainers_cannot_make_owners(client, db_path):
    project = project_where(db_path, USER, "= 40")
    outsider = query(db_path, """SELECT username FROM users WHERE is_admin = 0 AND id NOT IN (SELECT m.user_id
        FROM members m JOIN projects p ON p.id = m.project_id WHERE '/' || p.namespace || '/' || p.path = ?)
        ORDER BY username LIMIT 1""", project)[0][0]
    sign_in(client)
    members_url = f"{project}/-/project_members"
    assert client.post(members_url, data={"username": outsider, "access_level": "Owner"}).status_code == 403
    owner = query(db_path, """SELECT u.username FROM members m JOIN users u ON u.id = m.user_id
        JOIN projects p ON p.id = m.project_id WHERE '/' || p.namespace || '/' || p.path = ? AND m.access_level = 50""",
                  project)[0][0]
    assert client.post(f"{members_url}/{owner}/role", data={"access_level": "Guest"}).status_code == 403
    page = soup(client.post(members_url, data={"username": outsider, "access_level": "Developer"}))
    assert page.select_one(f'tr[data-username="{outsider}"] .member-role').get_text() == "Developer"


# --- state changes -----------------------------------------------------------------------------------------

def test_create_issue_with_label_and_assignee(client, db_path):
    sign_in(client)
    bug_id = query(db_path, """SELECT l.id FROM labels l JOIN projects p ON p.id = l.project_id
                                WHERE p.path = 'dotfiles' AND l.name = 'bug'""")[0][0]
    response = client.post(f"{OWN_PROJECT}/-/issues/new", data={
        "title": "Zsh prompt is slow in large repos", "description": "Takes 2 s.",
        "label_ids": str(bug_id), "assignee_username": USER})
    assert re.search(rf"{OWN_PROJECT}/-/issues/13$", str(response.url))
    page = soup(response)
    assert page.select_one("h1.issue-title").get_text() == "Zsh prompt is slow in large repos"
    assert [s.get_text() for s in page.select(".labels .gl-label")] == ["bug"]
    assert [d["data-username"] for d in page.select(".assignees .assignee")] == [USER]
    listed = soup(client.get(f"{OWN_PROJECT}/-/issues?label_name=bug"))
    assert "Zsh prompt is slow in large repos" in issue_titles(listed)
    blank = client.post(f"{OWN_PROJECT}/-/issues/new", data={"title": " "})
    assert blank.status_code == 422
    assert [li.get_text() for li in soup(blank).select(".errors li")] == ["Title can't be blank."]


def test_close_reopen_label_assign_and_comment(client, db_path):
    sign_in(client)
    iid = query(db_path, """SELECT i.iid FROM issues i JOIN projects p ON p.id = i.project_id
                            WHERE p.path = 'dotfiles' AND i.state = 'opened' ORDER BY i.iid LIMIT 1""")[0][0]
    url = f"{OWN_PROJECT}/-/issues/{iid}"
    page = soup(client.post(f"{url}/close"))
    assert page.select_one(".issuable-status")["data-state"] == "closed"
    assert page.select(".system-note-body")[-1].get_text() == "closed"
    closed = soup(client.get(f"{OWN_PROJECT}/-/issues?state=closed"))
    assert iid in [int(li["data-iid"]) for li in closed.select(".issue")]
    assert iid not in [int(li["data-iid"]) for li in soup(client.get(f"{OWN_PROJECT}/-/issues")).select(".issue")]
    page = soup(client.post(f"{url}/reopen"))
    assert page.select_one(".issuable-status")["data-state"] == "opened"

    page = soup(client.post(f"{url}/labels", data={"label_name": "help wanted"}))
    assert "help wanted" in [s.get_text() for s in page.select(".labels .gl-label")]
    assert page.select(".system-note-body")[-1].get_text() == "added ~help wanted label"
    label_id = page.select_one('.labels .gl-label[data-label="help wanted"]').find_next("input")["value"]
    page = soup(client.post(f"{url}/remove_label", data={"label_id": label_id}))
    assert "help wanted" not in [s.get_text() for s in page.select(".labels .gl-label")]

    member = query(db_path, """SELECT u.username FROM members m JOIN users u ON u.id = m.user_id
        JOIN projects p ON p.id = m.project_id WHERE p.path = 'dotfiles' AND u.username != ? LIMIT 1""", USER)[0][0]
    page = soup(client.post(f"{url}/assignees", data={"assignee_username": member}))
    assert member in [d["data-username"] for d in page.select(".assignees .assignee")]
    page = soup(client.post(f"{url}/remove_assignee", data={"assignee_username": member}))
    assert member not in [d["data-username"] for d in page.select(".assignees .assignee")]
    outsider = query(db_path, """SELECT username FROM users WHERE id NOT IN (SELECT user_id FROM members m
        JOIN projects p ON p.id = m.project_id WHERE p.path = 'dotfiles') AND is_admin = 0 LIMIT 1""")[0][0]
    assert client.post(f"{url}/assignees", data={"assignee_username": outsider}).status_code == 422

    page = soup(client.post(f"{url}/notes", data={"note": "Fixed by updating the plugin."}))
    assert page.select(".note .note-body")[-1].get_text() == "Fixed by updating the plugin."


def test_create_and_merge_a_merge_request(client, db_path):
    sign_in(client)
    form = soup(client.get(f"{OWN_PROJECT}/-/merge_requests/new"))
    branches = [o["value"] for o in form.select("#mr_source_branch option") if o["value"]]
    source = next(b for b in branches if b in ("develop", "docs/readme", "experiment/cache", "release/1.1"))
    same = client.post(f"{OWN_PROJECT}/-/merge_requests/new",
                       data={"title": "x", "source_branch": "main", "target_branch": "main"})
    assert same.status_code == 422 and "must be different" in same.text
    reviewer = form.select("#mr_reviewers option")[0]["value"]
    response = client.post(f"{OWN_PROJECT}/-/merge_requests/new", data={
        "title": "Speed up shell startup", "description": "Lazy-load nvm.", "source_branch": source,
        "target_branch": "main", "reviewer_usernames": reviewer})
    page = soup(response)
    iid = int(str(response.url).rsplit("/", 1)[1])
    assert page.select_one("h1.mr-title").get_text() == "Speed up shell startup"
    assert [r["data-username"] for r in page.select(".reviewers .reviewer")] == [reviewer]
    opened = soup(client.get(f"{OWN_PROJECT}/-/merge_requests"))
    assert iid in [int(li["data-iid"]) for li in opened.select(".merge-request")]
    page = soup(client.post(f"{OWN_PROJECT}/-/merge_requests/{iid}/merge"))
    assert page.select_one(".issuable-status")["data-state"] == "merged"
    merged = soup(client.get(f"{OWN_PROJECT}/-/merge_requests?state=merged"))
    assert iid in [int(li["data-iid"]) for li in merged.select(".merge-request")]
    assert client.post(f"{OWN_PROJECT}/-/merge_requests/{iid}/reopen").status_code == 422


def test_add_change_and_remove_a_member(client, db_path):
    sign_in(client)
    newcomer = query(db_path, """SELECT username FROM users WHERE id NOT IN (SELECT user_id FROM members m
        JOIN projects p ON p.id = m.project_id WHERE p.path = 'dotfiles') AND is_admin = 0
        ORDER BY username LIMIT 1""")[0][0]
    members_url = f"{OWN_PROJECT}/-/project_members"
    page = soup(client.post(members_url, data={"username": newcomer, "access_level": "Reporter"}))
    assert page.select_one(f'tr[data-username="{newcomer}"] .member-role').get_text() == "Reporter"
    page = soup(client.post(f"{members_url}/{newcomer}/role", data={"access_level": "Maintainer"}))
    row = page.select_one(f'tr[data-username="{newcomer}"]')
    assert row.select_one(".member-role").get_text() == "Maintainer" and row["data-access-level"] == "40"
    again = client.post(members_url, data={"username": newcomer, "access_level": "Guest"})
    assert again.status_code == 422 and "already a member" in again.text
    assert client.post(members_url, data={"username": "ghost.user", "access_level": "Guest"}).status_code == 422
    page = soup(client.post(f"{members_url}/{newcomer}/remove"))
    assert page.select_one(f'tr[data-username="{newcomer}"]') is None


def test_star_and_edit_description(client):
    sign_in(client)
    count = lambda page: int(page.select_one(".project-stats .star-count").get_text())  # noqa: E731
    page = soup(client.get("/openkit/lintkit"))
    before, was_starred = count(page), page.select_one(".star-btn").get_text() == "Unstar"
    page = soup(client.post("/openkit/lintkit/-/star"))
    assert count(page) == before + (-1 if was_starred else 1)
    assert page.select_one(".star-btn")["aria-pressed"] == ("false" if was_starred else "true")
    starred = soup(client.get("/dashboard/projects/starred"))
    assert ("openkit/lintkit" in [r["data-project"] for r in starred.select(".project-row")]) != was_starred
    page = soup(client.post(f"{OWN_PROJECT}/edit", data={"description": "My shell setup, now with fish."}))
    assert page.select_one(".project-description").get_text() == "My shell setup, now with fish."


# --- a real browser -----------------------------------------------------------------------------------------

@pytest.fixture
def live_server(db_path: Path) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(create_app(db_path), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the gitlab server did not start within 10 s"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


async def test_browser_label_and_close_an_issue(live_server, db_path):
    iid = query(db_path, """SELECT i.iid FROM issues i JOIN projects p ON p.id = i.project_id
                            WHERE p.path = 'dotfiles' AND i.state = 'opened' ORDER BY i.iid LIMIT 1""")[0][0]
    async with BrowserSession() as session:
        await session.new_context()
        page = session.page
        await login(page, live_server, USER, PASSWORD)
        await page.goto(f"{live_server}{OWN_PROJECT}/-/issues/{iid}")
        await page.get_by_label("Add label").select_option(label="priority::high")
        await page.get_by_role("button", name="Add label").click()
        await page.wait_for_selector('.labels .gl-label[data-label="priority::high"]')
        await page.get_by_role("button", name="Close issue").click()
        await page.wait_for_selector(".issuable-status[data-state=closed]")
        await page.goto(f"{live_server}{OWN_PROJECT}/-/issues?state=closed&label_name=priority::high")
        closed = await page.evaluate("[...document.querySelectorAll('.issue')].map(li => li.dataset.iid)")
        assert str(iid) in closed
