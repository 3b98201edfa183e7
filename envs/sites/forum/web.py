"""What every page of the forum shares: templates, the request's database, the signed-in user,
rendering with flashes, forums and posts by URL, votes, and post listings in hot/new/top order.

Handlers find the database through the app (`request.app.state.db_path`, set by app.create_app).
"""
from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from envs.sites.common import local_path, open_db, page_number
from envs.sites.forum.seed import slugify

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAGE_SIZE = 25
SORTS = ("hot", "new", "top")

POST_COLUMNS = """
    p.id, p.title, p.body, p.score, p.created_at, p.edited_at, p.user_id,
    f.name AS forum, u.username AS author,
    (SELECT COUNT(*) FROM comments c WHERE c.post_id = p.id) AS comment_count
"""
POST_FROM = "FROM posts p JOIN forums f ON f.id = p.forum_id JOIN users u ON u.id = p.user_id"


def now() -> str:
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


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals["post_url"] = post_url
templates.env.globals["slugify"] = slugify


@contextmanager
def database(request: Request) -> Iterator[sqlite3.Connection]:
    """The app's database for one request (committed when the handler finishes without an error)."""
    with open_db(request.app.state.db_path) as db:
        yield db


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


def forum_context(db: sqlite3.Connection, forum: sqlite3.Row, user: sqlite3.Row | None) -> dict[str, Any]:
    subscribers = db.execute("SELECT COUNT(*) FROM subscriptions WHERE forum_id = ?", (forum["id"],)).fetchone()[0]
    subscribed = user is not None and db.execute(
        "SELECT 1 FROM subscriptions WHERE forum_id = ? AND user_id = ?", (forum["id"], user["id"])).fetchone()
    return {"forum": forum, "subscribers": subscribers, "subscribed": bool(subscribed)}
