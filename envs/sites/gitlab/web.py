"""What every page of the code host shares: templates, the signed-in user, rendering with flashes,
a project and the visitor's access level in it, and the queries behind its lists and pages.

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
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from envs.sites.common import inserted_id, local_path, open_db, page_number
from envs.sites.gitlab.seed import ROLES

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAGE_SIZE = 20

# Who may do what, by GitLab access level (admins count as 60).
CAN_TRIAGE = 20   # Reporter: labels, assignees, close/reopen any issue
CAN_DEVELOP = 30  # Developer: create, close and merge merge requests
CAN_MAINTAIN = 40  # Maintainer: members and project settings
OWNER = 50

ISSUE_STATES = ("opened", "closed", "all")
MR_STATES = ("opened", "merged", "closed", "all")

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals["ROLES"] = ROLES


def now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _query_without_page(request: Request) -> str:
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"])


def form_field(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


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
    context.setdefault("user", current_user(request, db))
    context["flashes"] = request.session.pop("flashes", [])
    return templates.TemplateResponse(request, name, context, status_code=status)


def flash(request: Request, message: str) -> None:
    request.session["flashes"] = [*request.session.get("flashes", []), message]


def to_login(request: Request) -> RedirectResponse:
    flash(request, "You need to sign in or sign up before continuing.")
    target = request.url.path if request.method == "GET" else request.headers.get("referer", "/")
    return RedirectResponse(f"/users/sign_in?redirect_to={quote(local_path(target))}", status_code=303)


def get_project(db: sqlite3.Connection, request: Request) -> sqlite3.Row:
    project = db.execute("""
        SELECT p.*, (SELECT COUNT(*) FROM stars s WHERE s.project_id = p.id) AS star_count,
               (SELECT COUNT(*) FROM issues i WHERE i.project_id = p.id AND i.state = 'opened') AS open_issues,
               (SELECT COUNT(*) FROM merge_requests m WHERE m.project_id = p.id AND m.state = 'opened') AS open_mrs
        FROM projects p WHERE p.namespace = ? AND p.path = ?""",
        (request.path_params["namespace"], request.path_params["project"])).fetchone()
    if project is None:
        raise HTTPException(404, "The project you were looking for could not be found.")
    return project


def access_level(db: sqlite3.Connection, project: sqlite3.Row, user: sqlite3.Row | None) -> int:
    if user is None:
        return 0
    if user["is_admin"]:
        return 60
    row = db.execute("SELECT access_level FROM members WHERE project_id = ? AND user_id = ?",
                     (project["id"], user["id"])).fetchone()
    return row["access_level"] if row else 0


def require(level: int, needed: int, what: str) -> None:
    if level < needed:
        raise HTTPException(403, f"You are not allowed to {what} in this project.")


def project_context(db: sqlite3.Connection, request: Request) -> dict[str, Any]:
    project = get_project(db, request)
    user = current_user(request, db)
    starred = user is not None and db.execute(
        "SELECT 1 FROM stars WHERE user_id = ? AND project_id = ?", (user["id"], project["id"])).fetchone()
    return {"project": project, "user": user, "level": access_level(db, project, user),
            "starred": bool(starred), "base": f"/{project['namespace']}/{project['path']}"}


def touch(db: sqlite3.Connection, project: sqlite3.Row) -> None:
    db.execute("UPDATE projects SET updated_at = ? WHERE id = ?", (now(), project["id"]))


def add_note(db: sqlite3.Connection, kind: str, item_id: int, user: sqlite3.Row, body: str, system: bool) -> int:
    table = "issues" if kind == "issue" else "merge_requests"
    db.execute(f"UPDATE {table} SET updated_at = ? WHERE id = ?", (now(), item_id))
    return inserted_id(db.execute(
        "INSERT INTO notes (noteable_type, noteable_id, author_id, body, system, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (kind, item_id, user["id"], body, int(system), now())))


def paginate(request: Request, rows: list[Any]) -> dict[str, Any]:
    page = page_number(request.query_params.get("page"))
    pages = max(math.ceil(len(rows) / PAGE_SIZE), 1)
    return {"items": rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], "page": page, "pages": pages,
            "total": len(rows), "page_query": _query_without_page(request)}


def issue_rows(db: sqlite3.Connection, where: list[str], params: list[Any]) -> list[dict[str, Any]]:
    rows = db.execute(f"""
        SELECT i.*, p.namespace, p.path AS project_path, u.username AS author, u.name AS author_name,
               m.title AS milestone,
               (SELECT COUNT(*) FROM notes n WHERE n.noteable_type = 'issue' AND n.noteable_id = i.id
                AND n.system = 0) AS note_count
        FROM issues i JOIN projects p ON p.id = i.project_id JOIN users u ON u.id = i.author_id
        LEFT JOIN milestones m ON m.id = i.milestone_id
        WHERE {' AND '.join(where) or '1'} ORDER BY i.created_at DESC, i.id DESC""", params).fetchall()
    return [dict(row, labels=issue_labels(db, row["id"]), assignees=issue_assignees(db, row["id"])) for row in rows]


def issue_labels(db: sqlite3.Connection, issue_id: int) -> list[sqlite3.Row]:
    return db.execute("""SELECT l.* FROM labels l JOIN issue_labels il ON il.label_id = l.id
                         WHERE il.issue_id = ? ORDER BY l.name""", (issue_id,)).fetchall()


def issue_assignees(db: sqlite3.Connection, issue_id: int) -> list[sqlite3.Row]:
    return db.execute("""SELECT u.username, u.name FROM users u JOIN issue_assignees a ON a.user_id = u.id
                         WHERE a.issue_id = ? ORDER BY u.username""", (issue_id,)).fetchall()


def issue_filters(request: Request) -> tuple[list[str], list[Any], dict[str, Any]]:
    """SQL conditions for the state/label/assignee/author/search filters GitLab's issue lists take."""
    params = request.query_params
    state = params.get("state", "opened")
    if state not in ISSUE_STATES:
        state = "opened"
    where: list[str] = []
    args: list[Any] = []
    labels = [name for key in ("label_name", "label_name[]") for name in params.getlist(key) if name]
    for name in labels:
        where.append("EXISTS (SELECT 1 FROM issue_labels il JOIN labels l ON l.id = il.label_id "
                     "WHERE il.issue_id = i.id AND l.name = ?)")
        args.append(name)
    assignee = params.get("assignee_username") or params.get("assignee") or ""
    if assignee:
        where.append("EXISTS (SELECT 1 FROM issue_assignees a JOIN users au ON au.id = a.user_id "
                     "WHERE a.issue_id = i.id AND au.username = ?)")
        args.append(assignee)
    author = params.get("author_username", "")
    if author:
        where.append("u.username = ?")
        args.append(author)
    search = params.get("search", "").strip()
    if search:
        where.append("(i.title LIKE ? OR i.description LIKE ?)")
        args += [f"%{search}%", f"%{search}%"]
    return where, args, {"state": state, "labels": labels, "assignee": assignee, "author": author, "search": search}


def state_counts(db: sqlite3.Connection, table: str, where: list[str], args: list[Any]) -> dict[str, int]:
    """Counts for the state tabs: every filter applies except the state itself."""
    alias = "i" if table == "issues" else "m"
    rows = db.execute(f"""SELECT {alias}.state, COUNT(*) FROM {table} {alias}
                          JOIN users u ON u.id = {alias}.author_id
                          WHERE {' AND '.join(where) or '1'} GROUP BY {alias}.state""", args).fetchall()
    counts = {state: count for state, count in rows}
    counts["all"] = sum(counts.values())
    return counts


def listed(request: Request, db: sqlite3.Connection, table: str, where: list[str], args: list[Any],
           state: str) -> dict[str, Any]:
    """One page of issues or merge requests in the chosen state, with the state tab counts."""
    counts = state_counts(db, table, where, args)
    alias = "i" if table == "issues" else "m"
    if state != "all":
        where, args = [*where, f"{alias}.state = ?"], [*args, state]
    rows = issue_rows(db, where, args) if table == "issues" else mr_rows(db, where, args)
    return {"counts": counts, **paginate(request, rows)}


def mr_rows(db: sqlite3.Connection, where: list[str], params: list[Any]) -> list[dict[str, Any]]:
    rows = db.execute(f"""
        SELECT m.*, p.namespace, p.path AS project_path, u.username AS author, u.name AS author_name
        FROM merge_requests m JOIN projects p ON p.id = m.project_id JOIN users u ON u.id = m.author_id
        WHERE {' AND '.join(where) or '1'} ORDER BY m.created_at DESC, m.id DESC""", params).fetchall()
    return [dict(row, reviewers=mr_reviewers(db, row["id"])) for row in rows]


def mr_reviewers(db: sqlite3.Connection, mr_id: int) -> list[sqlite3.Row]:
    return db.execute("""SELECT u.username, u.name FROM users u JOIN mr_reviewers r ON r.user_id = u.id
                         WHERE r.mr_id = ? ORDER BY u.username""", (mr_id,)).fetchall()


def mr_filters(request: Request) -> tuple[list[str], list[Any], dict[str, Any]]:
    params = request.query_params
    state = params.get("state", "opened")
    if state not in MR_STATES:
        state = "opened"
    where: list[str] = []
    args: list[Any] = []
    reviewer = params.get("reviewer_username", "")
    if reviewer:
        where.append("EXISTS (SELECT 1 FROM mr_reviewers r JOIN users ru ON ru.id = r.user_id "
                     "WHERE r.mr_id = m.id AND ru.username = ?)")
        args.append(reviewer)
    author = params.get("author_username", "")
    if author:
        where.append("u.username = ?")
        args.append(author)
    search = params.get("search", "").strip()
    if search:
        where.append("m.title LIKE ?")
        args.append(f"%{search}%")
    return where, args, {"state": state, "reviewer": reviewer, "author": author, "search": search}


def project_rows(db: sqlite3.Connection, where: str, params: tuple, sort: str) -> list[sqlite3.Row]:
    order = {"stars": "star_count DESC, p.namespace, p.path", "name": "p.namespace, p.path",
             "updated": "p.updated_at DESC, p.id DESC"}.get(sort, "p.updated_at DESC, p.id DESC")
    return db.execute(f"""
        SELECT p.*, (SELECT COUNT(*) FROM stars s WHERE s.project_id = p.id) AS star_count,
               (SELECT COUNT(*) FROM issues i WHERE i.project_id = p.id AND i.state = 'opened') AS open_issues
        FROM projects p WHERE {where} ORDER BY {order}""", params).fetchall()


def members_of(db: sqlite3.Connection, project: sqlite3.Row) -> list[sqlite3.Row]:
    return db.execute("""SELECT u.username, u.name, m.access_level, m.created_at FROM members m
                         JOIN users u ON u.id = m.user_id WHERE m.project_id = ?
                         ORDER BY m.access_level DESC, u.username""", (project["id"],)).fetchall()


def get_issue(db: sqlite3.Connection, project: sqlite3.Row, iid: int) -> sqlite3.Row:
    issue = db.execute("""SELECT i.*, u.username AS author, u.name AS author_name FROM issues i
                          JOIN users u ON u.id = i.author_id WHERE i.project_id = ? AND i.iid = ?""",
                       (project["id"], iid)).fetchone()
    if issue is None:
        raise HTTPException(404, "The issue you were looking for could not be found.")
    return issue


def get_mr(db: sqlite3.Connection, project: sqlite3.Row, iid: int) -> sqlite3.Row:
    mr = db.execute("""SELECT m.*, u.username AS author, u.name AS author_name FROM merge_requests m
                       JOIN users u ON u.id = m.author_id WHERE m.project_id = ? AND m.iid = ?""",
                    (project["id"], iid)).fetchone()
    if mr is None:
        raise HTTPException(404, "The merge request you were looking for could not be found.")
    return mr


def notes_of(db: sqlite3.Connection, kind: str, item_id: int) -> list[sqlite3.Row]:
    return db.execute("""SELECT n.*, u.username AS author, u.name AS author_name FROM notes n
                         JOIN users u ON u.id = n.author_id WHERE n.noteable_type = ? AND n.noteable_id = ?
                         ORDER BY n.created_at, n.id""", (kind, item_id)).fetchall()
