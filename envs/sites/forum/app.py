"""The forum web app: server-rendered pages over the SQLite database written by seed.py."""
from __future__ import annotations

import math
import sqlite3
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from envs.sites.common import local_path, open_db, page_number
from envs.sites.forum.seed import password_hash, slugify

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAGE_SIZE = 25
SORTS = ("hot", "new", "top")
# A fixed key: sessions only need to survive a server restart within one local run.
SESSION_SECRET = "forethought-forum-session"

POST_COLUMNS = """
    p.id, p.title, p.body, p.score, p.created_at, p.edited_at, p.user_id,
    f.name AS forum, u.username AS author,
    (SELECT COUNT(*) FROM comments c WHERE c.post_id = p.id) AS comment_count
"""
POST_FROM = "FROM posts p JOIN forums f ON f.id = p.forum_id JOIN users u ON u.id = p.user_id"




def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _hot(post: sqlite3.Row) -> float:
    # Reddit's hot ranking: independent of the current time, so listings are reproducible.
    score = post["score"]
    order = math.log10(max(abs(score), 1))
    sign = 1 if score > 0 else -1 if score < 0 else 0
    seconds = datetime.strptime(post["created_at"], "%Y-%m-%d %H:%M:%S").timestamp() - 1134028003
    return round(sign * order + seconds / 45000, 7)


def _sorted(posts: list[sqlite3.Row], sort: str) -> list[sqlite3.Row]:
    if sort == "new":
        return sorted(posts, key=lambda p: (p["created_at"], p["id"]), reverse=True)
    if sort == "top":
        return sorted(posts, key=lambda p: (p["score"], p["id"]), reverse=True)
    return sorted(posts, key=lambda p: (_hot(p), p["id"]), reverse=True)


def _paginate(items: list[Any], page: int) -> tuple[list[Any], int]:
    pages = max(math.ceil(len(items) / PAGE_SIZE), 1)
    return items[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], pages


def post_url(post: sqlite3.Row) -> str:
    return f"/f/{post['forum']}/{post['id']}/{slugify(post['title'])}"


def create_app(db_path: Path) -> Starlette:
    """The forum as an ASGI app serving the database at db_path (created by seed.seed)."""
    db_path = Path(db_path)
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["post_url"] = post_url
    templates.env.globals["slugify"] = slugify

    def current_user(request: Request, db: sqlite3.Connection) -> sqlite3.Row | None:
        username = request.session.get("username")
        if not username:
            return None
        return db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()

    def render(request: Request, db: sqlite3.Connection, name: str, status: int = 200, **context: Any) -> Response:
        context["user"] = current_user(request, db)
        context["flashes"] = request.session.pop("flashes", [])
        return templates.TemplateResponse(request, name, context, status_code=status)

    def flash(request: Request, message: str) -> None:
        request.session["flashes"] = [*request.session.get("flashes", []), message]

    def to_login(request: Request) -> RedirectResponse:
        flash(request, "You need to log in to do that.")
        target = request.url.path if request.method == "GET" else request.headers.get("referer", "/")
        return RedirectResponse(f"/login?next={quote(local_path(target))}", status_code=303)

    def get_forum(db: sqlite3.Connection, name: str) -> sqlite3.Row:
        forum = db.execute("SELECT * FROM forums WHERE name = ?", (name,)).fetchone()
        if forum is None:
            raise HTTPException(404, f"There is no forum called {name!r}.")
        return forum

    def get_post(db: sqlite3.Connection, forum_name: str, post_id: int) -> sqlite3.Row:
        post = db.execute(f"SELECT {POST_COLUMNS} {POST_FROM} WHERE p.id = ? AND f.name = ?",
                          (post_id, forum_name)).fetchone()
        if post is None:
            raise HTTPException(404, "That submission does not exist or was deleted.")
        return post

    def user_votes(db: sqlite3.Connection, user: sqlite3.Row | None, item_type: str) -> dict[int, int]:
        if user is None:
            return {}
        rows = db.execute("SELECT item_id, value FROM votes WHERE user_id = ? AND item_type = ?",
                          (user["id"], item_type))
        return {row["item_id"]: row["value"] for row in rows}

    def listing(request: Request, db: sqlite3.Connection, where: str, params: tuple, **context: Any) -> Response:
        sort = request.query_params.get("sort", "hot")
        if sort not in SORTS:
            sort = "hot"
        posts = db.execute(f"SELECT {POST_COLUMNS} {POST_FROM} {where}", params).fetchall()
        page = page_number(request.query_params.get("page"))
        shown, pages = _paginate(_sorted(posts, sort), page)
        user = current_user(request, db)
        return render(request, db, context.pop("template", "listing.html"), posts=shown, sort=sort,
                      page=page, pages=pages, total=len(posts), votes=user_votes(db, user, "post"), **context)

    async def front_page(request: Request) -> Response:
        with open_db(db_path) as db:
            return listing(request, db, "", (), heading="All forums")

    async def forum_list(request: Request) -> Response:
        with open_db(db_path) as db:
            user = current_user(request, db)
            forums = db.execute("""
                SELECT f.*, (SELECT COUNT(*) FROM subscriptions s WHERE s.forum_id = f.id) AS subscribers,
                       (SELECT COUNT(*) FROM posts p WHERE p.forum_id = f.id) AS post_count,
                       EXISTS(SELECT 1 FROM subscriptions s WHERE s.forum_id = f.id AND s.user_id = ?) AS subscribed
                FROM forums f ORDER BY f.name""", (user["id"] if user else 0,)).fetchall()
            return render(request, db, "forums.html", forums=forums)

    def forum_context(db: sqlite3.Connection, forum: sqlite3.Row, user: sqlite3.Row | None) -> dict[str, Any]:
        subscribers = db.execute("SELECT COUNT(*) FROM subscriptions WHERE forum_id = ?", (forum["id"],)).fetchone()[0]
        subscribed = user is not None and db.execute(
            "SELECT 1 FROM subscriptions WHERE forum_id = ? AND user_id = ?", (forum["id"], user["id"])).fetchone()
        return {"forum": forum, "subscribers": subscribers, "subscribed": bool(subscribed)}

    async def forum_page(request: Request) -> Response:
        with open_db(db_path) as db:
            forum = get_forum(db, request.path_params["forum"])
            context = forum_context(db, forum, current_user(request, db))
            return listing(request, db, "WHERE p.forum_id = ?", (forum["id"],), heading=forum["title"], **context)

    async def subscribe(request: Request) -> Response:
        with open_db(db_path) as db:
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

    async def post_redirect(request: Request) -> Response:
        with open_db(db_path) as db:
            post = get_post(db, request.path_params["forum"], request.path_params["post_id"])
        return RedirectResponse(post_url(post), status_code=301)

    async def post_page(request: Request) -> Response:
        with open_db(db_path) as db:
            post = get_post(db, request.path_params["forum"], request.path_params["post_id"])
            if request.path_params["slug"] != slugify(post["title"]):
                return RedirectResponse(post_url(post), status_code=301)
            user = current_user(request, db)
            comments = db.execute("""
                SELECT c.*, u.username AS author FROM comments c JOIN users u ON u.id = c.user_id
                WHERE c.post_id = ? ORDER BY c.score DESC, c.id""", (post["id"],)).fetchall()
            replies: dict[int, list[sqlite3.Row]] = {}
            for comment in comments:
                if comment["parent_id"] is not None:
                    replies.setdefault(comment["parent_id"], []).append(comment)
            forum = get_forum(db, post["forum"])
            return render(request, db, "post.html", post=post, comments=[c for c in comments if c["parent_id"] is None],
                          replies=replies, votes=user_votes(db, user, "post"),
                          comment_votes=user_votes(db, user, "comment"), **forum_context(db, forum, user))

    async def add_comment(request: Request) -> Response:
        form = await request.form()
        with open_db(db_path) as db:
            user = current_user(request, db)
            if user is None:
                return to_login(request)
            post = get_post(db, request.path_params["forum"], request.path_params["post_id"])
            body = str(form.get("body", "")).strip()
            parent_id = form.get("parent_id") or None
            if not body:
                flash(request, "A comment cannot be empty.")
                return RedirectResponse(post_url(post), status_code=303)
            if parent_id is not None:
                parent = db.execute("SELECT parent_id FROM comments WHERE id = ? AND post_id = ?",
                                    (parent_id, post["id"])).fetchone()
                if parent is None:
                    raise HTTPException(404, "The comment you replied to does not exist.")
                parent_id = parent["parent_id"] or int(parent_id)  # threads are one level deep
            cursor = db.execute(
                "INSERT INTO comments (post_id, user_id, parent_id, body, score, created_at) VALUES (?, ?, ?, ?, 1, ?)",
                (post["id"], user["id"], parent_id, body, _now()))
            db.execute("INSERT INTO votes VALUES (?, 'comment', ?, 1)", (user["id"], cursor.lastrowid))
            flash(request, "Your comment was posted.")
        return RedirectResponse(f"{post_url(post)}#comment-{cursor.lastrowid}", status_code=303)

    async def vote(request: Request) -> Response:
        form = await request.form()
        item_type = request.path_params["item_type"]
        item_id = request.path_params["item_id"]
        with open_db(db_path) as db:
            user = current_user(request, db)
            if user is None:
                return to_login(request)
            table = {"post": "posts", "comment": "comments"}.get(item_type)
            if table is None or db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (item_id,)).fetchone() is None:
                raise HTTPException(404, "There is nothing to vote on here.")
            try:
                value = int(str(form.get("value", "")))
            except ValueError:
                value = 0
            if value not in (1, -1):
                raise HTTPException(400, "A vote is 1 (up) or -1 (down).")
            key = (user["id"], item_type, item_id)
            existing = db.execute("SELECT value FROM votes WHERE user_id = ? AND item_type = ? AND item_id = ?",
                                  key).fetchone()
            if existing is None:
                db.execute("INSERT INTO votes VALUES (?, ?, ?, ?)", (*key, value))
                delta = value
            elif existing["value"] == value:  # voting the same way again takes the vote back
                db.execute("DELETE FROM votes WHERE user_id = ? AND item_type = ? AND item_id = ?", key)
                delta = -value
            else:
                db.execute("UPDATE votes SET value = ? WHERE user_id = ? AND item_type = ? AND item_id = ?",
                           (value, *key))
                delta = 2 * value
            db.execute(f"UPDATE {table} SET score = score + ? WHERE id = ?", (delta, item_id))
        return RedirectResponse(local_path(str(form.get("next") or request.headers.get("referer") or "/")),
                                status_code=303)

    async def submit(request: Request) -> Response:
        with open_db(db_path) as db:
            user = current_user(request, db)
            if user is None:
                return to_login(request)
            forums = db.execute("SELECT name, title FROM forums ORDER BY name").fetchall()
            chosen = request.path_params.get("forum") or request.query_params.get("forum", "")
            if request.method == "GET":
                return render(request, db, "submit.html", forums=forums, values={"forum": chosen}, errors=[])
            form = await request.form()
            values = {key: str(form.get(key, "")).strip() for key in ("forum", "title", "body")}
            forum = db.execute("SELECT * FROM forums WHERE name = ?", (values["forum"],)).fetchone()
            errors = _post_errors(values)
            if forum is None:
                errors.insert(0, "Choose a forum to post in.")
            if errors:
                return render(request, db, "submit.html", status=422, forums=forums, values=values, errors=errors)
            cursor = db.execute(
                "INSERT INTO posts (forum_id, user_id, title, body, score, created_at) VALUES (?, ?, ?, ?, 1, ?)",
                (forum["id"], user["id"], values["title"], values["body"], _now()))
            db.execute("INSERT INTO votes VALUES (?, 'post', ?, 1)", (user["id"], cursor.lastrowid))
            flash(request, "Your submission was posted.")
            url = f"/f/{forum['name']}/{cursor.lastrowid}/{slugify(values['title'])}"
        return RedirectResponse(url, status_code=303)

    def own_post(request: Request, db: sqlite3.Connection) -> tuple[sqlite3.Row | None, sqlite3.Row]:
        user = current_user(request, db)
        post = get_post(db, request.path_params["forum"], request.path_params["post_id"])
        if user is not None and post["user_id"] != user["id"] and user["role"] != "admin":
            raise HTTPException(403, "You can only change your own submissions.")
        return user, post

    async def edit_post(request: Request) -> Response:
        with open_db(db_path) as db:
            user, post = own_post(request, db)
            if user is None:
                return to_login(request)
            if request.method == "GET":
                return render(request, db, "edit.html", post=post, values=dict(post), errors=[])
            form = await request.form()
            values = {key: str(form.get(key, "")).strip() for key in ("title", "body")}
            errors = _post_errors(values)
            if errors:
                return render(request, db, "edit.html", status=422, post=post, values=values, errors=errors)
            db.execute("UPDATE posts SET title = ?, body = ?, edited_at = ? WHERE id = ?",
                       (values["title"], values["body"], _now(), post["id"]))
            flash(request, "Your submission was updated.")
        return RedirectResponse(f"/f/{post['forum']}/{post['id']}/{slugify(values['title'])}", status_code=303)

    async def delete_post(request: Request) -> Response:
        with open_db(db_path) as db:
            user, post = own_post(request, db)
            if user is None:
                return to_login(request)
            comment_ids = [row[0] for row in db.execute("SELECT id FROM comments WHERE post_id = ?", (post["id"],))]
            db.executemany("DELETE FROM votes WHERE item_type = 'comment' AND item_id = ?",
                           [(cid,) for cid in comment_ids])
            db.execute("DELETE FROM votes WHERE item_type = 'post' AND item_id = ?", (post["id"],))
            db.execute("DELETE FROM comments WHERE post_id = ? AND parent_id IS NOT NULL", (post["id"],))
            db.execute("DELETE FROM comments WHERE post_id = ?", (post["id"],))
            db.execute("DELETE FROM posts WHERE id = ?", (post["id"],))
            flash(request, "The submission was deleted.")
        return RedirectResponse(f"/f/{post['forum']}", status_code=303)

    async def user_page(request: Request) -> Response:
        with open_db(db_path) as db:
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
        with open_db(db_path) as db:
            if not query:
                return listing(request, db, "WHERE 0", (), template="search.html", query=query)
            pattern = f"%{query}%"
            return listing(request, db, "WHERE p.title LIKE ? OR p.body LIKE ?", (pattern, pattern),
                           template="search.html", query=query)

    async def login(request: Request) -> Response:
        next_path = local_path(request.query_params.get("next", "/"))
        with open_db(db_path) as db:
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
        with open_db(db_path) as db:
            return render(request, db, "error.html", status=status, status_code=status, phrase=phrase,
                          message=detail)

    routes = [
        Route("/", front_page),
        Route("/forums", forum_list),
        Route("/login", login, methods=["GET", "POST"]),
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
    return Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET, session_cookie="forum_session")],
        exception_handlers={HTTPException: error_page},
    )


def _post_errors(values: dict[str, str]) -> list[str]:
    errors = []
    if not values.get("title"):
        errors.append("The title cannot be empty.")
    elif len(values["title"]) > 300:
        errors.append("The title must be at most 300 characters.")
    if len(values.get("body", "")) > 10000:
        errors.append("The body must be at most 10000 characters.")
    return errors


async def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Log a Playwright page in to the forum at base_url."""
    await page.goto(base_url.rstrip("/") + "/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Log in").click()
    if "/login" in page.url:
        raise RuntimeError(f"forum login failed for {username!r}: check the username and password")
