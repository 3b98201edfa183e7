"""The forum's posts: a post's page, comments, votes, submitting, editing and deleting a post."""
from __future__ import annotations

import sqlite3

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from envs.sites.common import local_path
from envs.sites.forum.seed import slugify
from envs.sites.forum.web import (
    current_user,
    database,
    flash,
    forum_context,
    get_forum,
    get_post,
    now,
    post_url,
    render,
    to_login,
    user_votes,
)


async def post_redirect(request: Request) -> Response:
    with database(request) as db:
        post = get_post(db, request.path_params["forum"], request.path_params["post_id"])
    return RedirectResponse(post_url(post), status_code=301)


async def post_page(request: Request) -> Response:
    with database(request) as db:
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
    with database(request) as db:
        user = current_user(request, db)
        if user is None:
            return to_login(request)
        post = get_post(db, request.path_params["forum"], request.path_params["post_id"])
        body = str(form.get("body", "")).strip()
        replied_to = str(form.get("parent_id") or "")
        if not body:
            flash(request, "A comment cannot be empty.")
            return RedirectResponse(post_url(post), status_code=303)
        parent_id: int | None = None
        if replied_to:
            parent = db.execute("SELECT parent_id FROM comments WHERE id = ? AND post_id = ?",
                                (replied_to, post["id"])).fetchone()
            if parent is None:
                raise HTTPException(404, "The comment you replied to does not exist.")
            parent_id = parent["parent_id"] or int(replied_to)  # threads are one level deep
        cursor = db.execute(
            "INSERT INTO comments (post_id, user_id, parent_id, body, score, created_at) VALUES (?, ?, ?, ?, 1, ?)",
            (post["id"], user["id"], parent_id, body, now()))
        db.execute("INSERT INTO votes VALUES (?, 'comment', ?, 1)", (user["id"], cursor.lastrowid))
        flash(request, "Your comment was posted.")
    return RedirectResponse(f"{post_url(post)}#comment-{cursor.lastrowid}", status_code=303)


async def vote(request: Request) -> Response:
    form = await request.form()
    item_type = request.path_params["item_type"]
    item_id = request.path_params["item_id"]
    with database(request) as db:
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
    with database(request) as db:
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
            (forum["id"], user["id"], values["title"], values["body"], now()))
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
    with database(request) as db:
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
                   (values["title"], values["body"], now(), post["id"]))
        flash(request, "Your submission was updated.")
    return RedirectResponse(f"/f/{post['forum']}/{post['id']}/{slugify(values['title'])}", status_code=303)


async def delete_post(request: Request) -> Response:
    with database(request) as db:
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


def _post_errors(values: dict[str, str]) -> list[str]:
    errors = []
    if not values.get("title"):
        errors.append("The title cannot be empty.")
    elif len(values["title"]) > 300:
        errors.append("The title must be at most 300 characters.")
    if len(values.get("body", "")) > 10000:
        errors.append("The body must be at most 10000 characters.")
    return errors
