"""The local forum site (WebArena's "reddit"): seed data, pages, logins, and every state change."""
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
from envs.sites.forum import ACCOUNTS
from envs.sites.forum.app import create_app, login
from envs.sites.forum.seed import seed

USER, PASSWORD, _ = ACCOUNTS[0]
OTHER_USER, OTHER_PASSWORD, _ = ACCOUNTS[1]


@pytest.fixture(scope="module")
def pristine_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("forum") / "pristine.db"
    seed(path)
    return path


@pytest.fixture
def db_path(pristine_db: Path, tmp_path: Path) -> Path:
    # Each test changes its own copy, as the runner resets a site between tasks.
    path = tmp_path / "forum.db"
    shutil.copy(pristine_db, path)
    return path


@pytest.fixture
def client(db_path: Path) -> TestClient:
    return TestClient(create_app(db_path))


def log_in(client: TestClient, username: str = USER, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 200 and "/login" not in str(response.url), "login failed"


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "lxml")


def query(db_path: Path, sql: str, *params):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def a_post_by(db_path: Path, username: str, mine: bool = True) -> tuple[int, str, str]:
    op = "=" if mine else "!="
    return query(db_path, f"""SELECT p.id, f.name, p.title FROM posts p JOIN forums f ON f.id = p.forum_id
                 JOIN users u ON u.id = p.user_id WHERE u.username {op} ? ORDER BY p.id LIMIT 1""", username)[0]


# --- seed ---------------------------------------------------------------------------------------

def test_seed_is_deterministic_and_realistically_sized(tmp_path, pristine_db):
    again = tmp_path / "again.db"
    seed(again)
    dump = lambda path: list(sqlite3.connect(path).iterdump())  # noqa: E731
    assert dump(again) == dump(pristine_db)
    counts = {table: query(pristine_db, f"SELECT COUNT(*) FROM {table}")[0][0]
              for table in ("forums", "posts", "comments", "users", "votes")}
    assert counts["forums"] == 12 and counts["posts"] == 300 and counts["comments"] == 900
    assert counts["users"] >= 40 and counts["votes"] >= 100
    replies = query(pristine_db, "SELECT COUNT(*) FROM comments WHERE parent_id IS NOT NULL")[0][0]
    assert 200 < replies < 400
    for username, _, _ in ACCOUNTS:
        assert query(pristine_db, "SELECT 1 FROM users WHERE username = ?", username)


# --- reading --------------------------------------------------------------------------------------

def test_forum_page_lists_only_its_posts_sorted_and_paginated(client, db_path):
    books = soup(client.get("/f/books?sort=new"))
    titles = [a.get_text() for a in books.select(".submission__title a")]
    expected = [row[0] for row in query(db_path, """SELECT p.title FROM posts p JOIN forums f ON f.id = p.forum_id
                WHERE f.name = 'books' ORDER BY p.created_at DESC LIMIT 25""")]
    assert titles == expected
    assert {a.get_text() for a in books.select(".submission__forum")} == {"/f/books"}
    top = soup(client.get("/f/books?sort=top"))
    scores = [int(s.get_text()) for s in top.select(".submission .vote__score")]
    assert scores == sorted(scores, reverse=True)
    front = soup(client.get("/?sort=new"))
    assert front.select_one("a[rel=next]")["href"] == "/?sort=new&page=2"
    page_two = soup(client.get("/?sort=new&page=2"))
    assert page_two.select(".submission__title a")[0].get_text() not in [
        a.get_text() for a in front.select(".submission__title a")]
    assert page_two.select_one(".breadcrumbs") is not None


def test_post_page_shows_body_comments_and_replies(client, db_path):
    post_id, forum, title = query(db_path, """SELECT p.id, f.name, p.title
        FROM posts p JOIN forums f ON f.id = p.forum_id
        WHERE EXISTS (SELECT 1 FROM comments c WHERE c.post_id = p.id AND c.parent_id IS NOT NULL) LIMIT 1""")[0]
    response = client.get(f"/f/{forum}/{post_id}")  # redirects to the slugged URL
    assert re.search(rf"/f/{forum}/{post_id}/[a-z0-9-]+$", str(response.url))
    page = soup(response)
    assert page.select_one("h1.submission__title").get_text() == title
    count = query(db_path, "SELECT COUNT(*) FROM comments WHERE post_id = ?", post_id)[0][0]
    assert len(page.select("#comments .comment")) == count
    assert page.select_one(".comment-count").get_text() == f"{count} comment{'' if count == 1 else 's'}"
    assert page.select(".comment .comment"), "replies are nested inside their parent comment"


def test_unknown_pages_are_real_404_pages(client):
    for url in ("/f/no-such-forum", "/f/books/999999/whatever", "/user/nobody_here", "/no/such/page"):
        response = client.get(url)
        assert response.status_code == 404, url
        page = soup(response)
        assert page.select_one("h1.error-title").get_text() == "404 Not Found"
        assert page.select_one("nav.site-nav") is not None


def test_search_finds_titles_and_bodies(client, db_path):
    page = soup(client.get("/search", params={"q": "Dune"}))
    titles = [a.get_text() for a in page.select(".submission__title a")]
    expected = query(db_path, "SELECT title FROM posts WHERE title LIKE '%Dune%' OR body LIKE '%Dune%'")
    assert sorted(titles) == sorted(row[0] for row in expected) and titles
    assert page.select_one("#search-query")["value"] == "Dune"
    assert not soup(client.get("/search", params={"q": "zzzqqqxxx"})).select(".submission")


def test_user_page_lists_posts_and_comments(client, db_path):
    page = soup(client.get(f"/user/{USER}"))
    posts = query(db_path, "SELECT COUNT(*) FROM posts p JOIN users u ON u.id = p.user_id WHERE u.username = ?", USER)
    comments = query(db_path, "SELECT COUNT(*) FROM comments c JOIN users u ON u.id = c.user_id WHERE u.username = ?",
                     USER)
    assert len(page.select(".user-submissions .submission")) == posts[0][0]
    assert len(page.select(".user-comments .comment")) == comments[0][0]


# --- logging in and permissions ---------------------------------------------------------------------

def test_login_rejects_a_wrong_password_and_accepts_the_right_one(client):
    bad = client.post("/login", data={"username": USER, "password": "wrong"})
    assert bad.status_code == 401 and "Invalid username or password" in bad.text
    good = client.post("/login", data={"username": USER, "password": PASSWORD, "next": "/forums"})
    assert str(good.url).endswith("/forums")
    assert soup(good).select_one(".site-nav .user-link").get_text() == USER
    client.post("/logout")
    assert soup(client.get("/")).select_one(".site-nav .user-link") is None


def test_changes_need_a_login(client, db_path):
    post_id, forum, _ = a_post_by(db_path, USER)
    before = query(db_path, "SELECT COUNT(*), SUM(score) FROM posts")
    attempts = [
        ("/submit", {"forum": "books", "title": "Anonymous post", "body": "x"}),
        (f"/f/{forum}/{post_id}/-/comment", {"body": "anonymous comment"}),
        (f"/vote/post/{post_id}", {"value": "1"}),
        (f"/f/{forum}/{post_id}/-/edit", {"title": "hijacked", "body": ""}),
        (f"/f/{forum}/{post_id}/-/delete", {}),
        ("/f/books/subscribe", {}),
    ]
    for url, data in attempts:
        response = client.post(url, data=data, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), url
    assert query(db_path, "SELECT COUNT(*), SUM(score) FROM posts") == before
    assert not query(db_path, "SELECT 1 FROM comments WHERE body = 'anonymous comment'")
    assert str(client.get("/submit").url).endswith("/login?next=/submit")


def test_others_posts_cannot_be_edited_or_deleted(client, db_path):
    post_id, forum, title = a_post_by(db_path, USER, mine=False)
    log_in(client)
    assert client.get(f"/f/{forum}/{post_id}/-/edit").status_code == 403
    assert client.post(f"/f/{forum}/{post_id}/-/edit", data={"title": "mine now", "body": ""}).status_code == 403
    assert client.post(f"/f/{forum}/{post_id}/-/delete").status_code == 403
    assert query(db_path, "SELECT title FROM posts WHERE id = ?", post_id) == [(title,)]
    assert "Edit" not in [a.get_text() for a in soup(client.get(f"/f/{forum}/{post_id}")).select("a")]


# --- state changes ------------------------------------------------------------------------------------

def test_new_post_appears_in_its_forum_and_on_the_user_page(client):
    log_in(client)
    response = client.post("/submit", data={"forum": "gardening", "title": "Worm bin smells sweet now",
                                            "body": "Added shredded cardboard."})
    assert re.search(r"/f/gardening/\d+/worm-bin-smells-sweet-now$", str(response.url))
    page = soup(response)
    assert page.select_one("h1.submission__title").get_text() == "Worm bin smells sweet now"
    assert page.select_one(".submission__body").get_text() == "Added shredded cardboard."
    newest = soup(client.get("/f/gardening?sort=new")).select_one(".submission__title a")
    assert newest.get_text() == "Worm bin smells sweet now"
    assert "Worm bin smells sweet now" in client.get(f"/user/{USER}").text
    assert "Worm bin smells sweet now" in client.get("/search?q=worm+bin").text


def test_new_post_form_reports_missing_fields(client):
    log_in(client)
    response = client.post("/submit", data={"forum": "", "title": "", "body": "text"})
    assert response.status_code == 422
    errors = [li.get_text() for li in soup(response).select(".errors li")]
    assert errors == ["Choose a forum to post in.", "The title cannot be empty."]
    assert soup(client.get("/submit/cooking")).select_one("#post-forum option[selected]")["value"] == "cooking"


def test_edit_and_delete_own_post(client, db_path):
    post_id, forum, _ = a_post_by(db_path, USER)
    log_in(client)
    edit_form = soup(client.get(f"/f/{forum}/{post_id}/-/edit"))
    assert edit_form.select_one("label[for=post-title]") is not None
    response = client.post(f"/f/{forum}/{post_id}/-/edit", data={"title": "Updated title", "body": "Updated body"})
    page = soup(response)
    assert page.select_one("h1.submission__title").get_text() == "Updated title"
    assert page.select_one(".submission__body").get_text() == "Updated body"
    assert page.select_one(".submission__edited") is not None
    client.post(f"/f/{forum}/{post_id}/-/delete")
    assert client.get(f"/f/{forum}/{post_id}").status_code == 404
    assert "Updated title" not in client.get(f"/user/{USER}").text


def test_comment_and_reply_appear_under_the_post(client, db_path):
    post_id, forum, _ = a_post_by(db_path, OTHER_USER)
    log_in(client)
    page = soup(client.post(f"/f/{forum}/{post_id}/-/comment", data={"body": "Lovely write-up"}))
    comment = [c for c in page.select(".comment") if c.select_one(".comment__body").get_text() == "Lovely write-up"][0]
    assert comment.select_one(".comment__author").get_text() == USER
    comment_id = comment["id"].removeprefix("comment-")
    page = soup(client.post(f"/f/{forum}/{post_id}/-/comment", data={"body": "Replying to myself",
                                                                       "parent_id": comment_id}))
    nested = page.select(f"#comment-{comment_id} .comment .comment__body")
    assert [c.get_text() for c in nested] == ["Replying to myself"]
    assert client.post(f"/f/{forum}/{post_id}/-/comment", data={"body": "   "}).url.path.startswith(f"/f/{forum}")
    assert not query(db_path, "SELECT 1 FROM comments WHERE body = '   '")


def test_votes_count_once_per_user_and_toggle(client, db_path):
    post_id, forum, _ = a_post_by(db_path, OTHER_USER)
    log_in(client)
    score = lambda: int(soup(client.get(f"/f/{forum}/{post_id}")).select_one(  # noqa: E731
        f"#submission-{post_id} .vote__score").get_text())
    start = score() - (query(db_path, """SELECT COALESCE(SUM(value), 0) FROM votes v JOIN users u ON u.id = v.user_id
        WHERE u.username = ? AND item_type = 'post' AND item_id = ?""", USER, post_id)[0][0])
    client.post(f"/vote/post/{post_id}", data={"value": "1"})
    assert score() == start + 1
    page = soup(client.get(f"/f/{forum}/{post_id}"))
    assert page.select_one(f"#submission-{post_id} .vote__up")["aria-pressed"] == "true"
    client.post(f"/vote/post/{post_id}", data={"value": "-1"})
    assert score() == start - 1
    client.post(f"/vote/post/{post_id}", data={"value": "-1"})  # the same vote again takes it back
    assert score() == start
    assert client.post(f"/vote/post/{post_id}", data={"value": "5"}).status_code == 400
    assert client.post("/vote/post/999999", data={"value": "1"}).status_code == 404


def test_subscribe_and_unsubscribe_show_on_the_forum_pages(client):
    log_in(client)
    client.post("/f/running/unsubscribe")
    before = int(soup(client.get("/f/running")).select_one(".forum-subscribers").get_text())
    page = soup(client.post("/f/running/subscribe"))
    assert page.select_one(".subscribe-button").get_text() == "Unsubscribe"
    assert int(page.select_one(".forum-subscribers").get_text()) == before + 1
    assert soup(client.get("/forums")).select_one("#forum-running .subscribe-button").get_text() == "Unsubscribe"
    assert "/f/running" in [a.get_text() for a in soup(client.get(f"/user/{USER}")).select(".user-subscriptions a")]
    client.post("/f/running/unsubscribe")
    assert soup(client.get("/forums")).select_one("#forum-running .subscribe-button").get_text() == "Subscribe"


# --- a real browser ---------------------------------------------------------------------------------------

@pytest.fixture
def live_server(db_path: Path) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(create_app(db_path), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the forum server did not start within 10 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


async def test_browser_login_and_new_post_shows_in_the_forum(live_server):
    async with BrowserSession() as session:
        await session.new_context()
        page = session.page
        await login(page, live_server, USER, PASSWORD)
        assert await page.locator(".site-nav .user-link").inner_text() == USER
        await page.get_by_role("link", name="Submit").first.click()
        await page.get_by_label("Forum").select_option("books")
        await page.get_by_label("Title").fill("Reading Middlemarch in one sitting")
        await page.get_by_label("Body").fill("It took nine hours.")
        await page.get_by_role("button", name="Create submission").click()
        await page.wait_for_url(re.compile(r"/f/books/\d+/reading-middlemarch-in-one-sitting$"))
        await page.goto(live_server + "/f/books?sort=new")
        newest = await page.evaluate("document.querySelector('.submission__title a').textContent")
        assert newest == "Reading Middlemarch in one sitting"
        with pytest.raises(RuntimeError, match="login failed"):
            await session.new_context()
            await login(session.page, live_server, USER, "not-the-password")
