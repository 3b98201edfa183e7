"""The forum web app: server-rendered pages over the SQLite database written by seed.py.

This module wires the routes and serves the listings (front page, forums, search), subscriptions,
user pages and logging in; posts.py serves a post and what can be done to it, and web.py holds
what every page shares.
"""
from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from envs.sites.common import local_path
from envs.sites.forum.posts import add_comment, delete_post, edit_post, post_page, post_redirect, submit, vote
from envs.sites.forum.seed import password_hash
from envs.sites.forum.web import (
    POST_COLUMNS,
    POST_FROM,
    current_user,
    database,
    flash,
    forum_context,
    get_forum,
    listing,
    render,
    to_login,
)

# A fixed key: sessions only need to survive a server restart within one local run.
SESSION_SECRET = "forethought-forum-session"


def create_app(db_path: Path) -> Starlette:
    """The forum as an ASGI app serving the database at db_path (created by seed.seed)."""
    routes = [
        Route("/", front_page),
        Route("/forums", forum_list),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/submit", submit, methods=["GET", "POST"]),
        Route("/submit/{forum}", submit, methods=["GET", "POST"]),
        Route("/search", search),
        Route("/user/{username}", user_page),
        Route("/vote/{item_type}/{item_id:int}", vote, methods=["POST"]),
        Route("/f/{forum}", forum_page),
        Route("/f/{forum}/subscribe", subscribe, methods=["POST"]),
        Route("/f/{forum}/unsubscribe", subscribe, methods=["POST"]),
        Route("/f/{forum}/{post_id:int}", post_redirect),
        Route("/f/{forum}/{post_id:int}/-/edit", edit_post, methods=["GET", "POST"]),
        Route("/f/{forum}/{post_id:int}/-/delete", delete_post, methods=["POST"]),
        Route("/f/{forum}/{post_id:int}/-/comment", add_comment, methods=["POST"]),
        Route("/f/{forum}/{post_id:int}/{slug}", post_page),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET, session_cookie="forum_session")],
        exception_handlers={HTTPException: error_page},
    )
    app.state.db_path = Path(db_path)  # where web.database() finds it
    return app


async def front_page(request: Request) -> Response:
    with database(request) as db:
        return listing(request, db, "", (), heading="All forums")


async def forum_list(request: Request) -> Response:
    with database(request) as db:
        user = current_user(request, db)
        forums = db.execute("""
            SELECT f.*, (SELECT COUNT(*) FROM subscriptions s WHERE s.forum_id = f.id) AS subscribers,
                   (SELECT COUNT(*) FROM posts p WHERE p.forum_id = f.id) AS post_count,
                   EXISTS(SELECT 1 FROM subscriptions s WHERE s.forum_id = f.id AND s.user_id = ?) AS subscribed
            FROM forums f ORDER BY f.name""", (user["id"] if user else 0,)).fetchall()
        return render(request, db, "forums.html", forums=forums)


async def forum_page(request: Request) -> Response:
    with database(request) as db:
        forum = get_forum(db, request.path_params["forum"])
        context = forum_context(db, forum, current_user(request, db))
        return listing(request, db, "WHERE p.forum_id = ?", (forum["id"],), heading=forum["title"], **context)


async def subscribe(request: Request) -> Response:
    with database(request) as db:
        user = current_user(request, db)
        if user is None:
            return to_login(request)
        forum = get_forum(db, request.path_params["forum"])
        if request.url.path.endswith("/unsubscribe"):
            db.execute("DELETE FROM subscriptions WHERE user_id = ? AND forum_id = ?", (user["id"], forum["id"]))
            flash(request, f"Unsubscribed from /f/{forum['name']}.")
        else:
            db.execute("INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", (user["id"], forum["id"]))
            flash(request, f"Subscribed to /f/{forum['name']}.")
    return RedirectResponse(f"/f/{forum['name']}", status_code=303)


async def user_page(request: Request) -> Response:
    with database(request) as db:
        profile = db.execute("SELECT * FROM users WHERE username = ?", (request.path_params["username"],)).fetchone()
        if profile is None:
            raise HTTPException(404, "There is no user with that name.")
        posts = db.execute(f"SELECT {POST_COLUMNS} {POST_FROM} WHERE p.user_id = ? ORDER BY p.created_at DESC",
                           (profile["id"],)).fetchall()
        comments = db.execute("""
            SELECT c.*, p.title AS post_title, p.id AS post_id, f.name AS forum FROM comments c
            JOIN posts p ON p.id = c.post_id JOIN forums f ON f.id = p.forum_id
            WHERE c.user_id = ? ORDER BY c.created_at DESC, c.id DESC""", (profile["id"],)).fetchall()
        subscriptions = db.execute("""
            SELECT f.name FROM subscriptions s JOIN forums f ON f.id = s.forum_id
            WHERE s.user_id = ? ORDER BY f.name""", (profile["id"],)).fetchall()
        return render(request, db, "user.html", profile=profile, posts=posts, comments=comments,
                      subscriptions=subscriptions)


async def search(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    with database(request) as db:
        if not query:
            return listing(request, db, "WHERE 0", (), template="search.html", query=query)
        pattern = f"%{query}%"
        return listing(request, db, "WHERE p.title LIKE ? OR p.body LIKE ?", (pattern, pattern),
                       template="search.html", query=query)


async def login_page(request: Request) -> Response:
    next_path = local_path(request.query_params.get("next", "/"))
    with database(request) as db:
        if request.method == "GET":
            return render(request, db, "login.html", next=next_path, error=None, username="")
        form = await request.form()
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        user = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        if user is None or user["password_hash"] != password_hash(password):
            return render(request, db, "login.html", status=401, next=next_path, username=username,
                          error="Invalid username or password.")
    request.session["username"] = user["username"]
    return RedirectResponse(local_path(str(form.get("next") or next_path)), status_code=303)


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


async def error_page(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    phrase = HTTPStatus(status).phrase
    detail = getattr(exc, "detail", "")
    if detail == phrase:  # Starlette's own 404/405 carry only the phrase
        detail = "The page you requested does not exist." if status == 404 else ""
    with database(request) as db:
        return render(request, db, "error.html", status=status, status_code=status, phrase=phrase,
                      message=detail)


async def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Log a Playwright page in to the forum at base_url."""
    await page.goto(base_url.rstrip("/") + "/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Log in").click()
    if "/login" in page.url:
        raise RuntimeError(f"forum login failed for {username!r}: check the username and password")
