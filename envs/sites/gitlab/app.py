"""The code-hosting web app: server-rendered pages over the SQLite database written by seed.py."""
from __future__ import annotations

import math
import sqlite3
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from envs.sites.common import local_path, open_db, page_number
from envs.sites.gitlab.seed import ROLE_LEVELS, ROLES, password_hash

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAGE_SIZE = 20
SESSION_SECRET = "forethought-gitlab-session"  # fixed: sessions only matter within one local run

# Who may do what, by GitLab access level (admins count as 60).
CAN_TRIAGE = 20   # Reporter: labels, assignees, close/reopen any issue
CAN_DEVELOP = 30  # Developer: create, close and merge merge requests
CAN_MAINTAIN = 40  # Maintainer: members and project settings
OWNER = 50

ISSUE_STATES = ("opened", "closed", "all")
MR_STATES = ("opened", "merged", "closed", "all")




def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _query_without_page(request: Request) -> str:
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"])


def _field(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


def create_app(db_path: Path) -> Starlette:
    """The code host as an ASGI app serving the database at db_path (created by seed.seed)."""
    db_path = Path(db_path)
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["ROLES"] = ROLES

    # --- helpers shared by the handlers -------------------------------------------------------------

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
        db.execute("UPDATE projects SET updated_at = ? WHERE id = ?", (_now(), project["id"]))

    def add_note(db: sqlite3.Connection, kind: str, item_id: int, user: sqlite3.Row, body: str, system: bool) -> int:
        table = "issues" if kind == "issue" else "merge_requests"
        db.execute(f"UPDATE {table} SET updated_at = ? WHERE id = ?", (_now(), item_id))
        return db.execute(
            "INSERT INTO notes (noteable_type, noteable_id, author_id, body, system, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, item_id, user["id"], body, int(system), _now())).lastrowid

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

    # --- sign in ------------------------------------------------------------------------------------

    async def sign_in(request: Request) -> Response:
        redirect_to = local_path(request.query_params.get("redirect_to", "/"))
        with open_db(db_path) as db:
            if request.method == "GET":
                return render(request, db, "sign_in.html", redirect_to=redirect_to, error=None, login="")
            form = await request.form()
            login_name = _field(form, "username")
            user = db.execute("SELECT * FROM users WHERE username = ?", (login_name,)).fetchone()
            if user is None or user["password_hash"] != password_hash(str(form.get("password", ""))):
                return render(request, db, "sign_in.html", status=401, redirect_to=redirect_to, login=login_name,
                              error="Invalid login or password.")
        request.session["username"] = user["username"]
        return RedirectResponse(local_path(_field(form, "redirect_to") or redirect_to), status_code=303)

    async def sign_out(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/users/sign_in", status_code=303)

    # --- project lists, dashboards, search ------------------------------------------------------------

    async def home(request: Request) -> Response:
        with open_db(db_path) as db:
            signed_in = current_user(request, db) is not None
        return RedirectResponse("/dashboard/projects" if signed_in else "/explore/projects", status_code=303)

    async def project_list(request: Request) -> Response:
        scope = {"/explore/projects": "all", "/dashboard/projects": "yours",
                 "/dashboard/projects/starred": "starred"}[request.url.path]
        sort = request.query_params.get("sort", "updated")
        search = request.query_params.get("search", "").strip()
        with open_db(db_path) as db:
            user = current_user(request, db)
            if scope != "all" and user is None:
                return to_login(request)
            where, params = ["(p.namespace || '/' || p.path LIKE ? OR p.description LIKE ?)"], [f"%{search}%"] * 2
            if scope == "yours":
                where.append("EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.user_id = ?)")
                params.append(user["id"])
            elif scope == "starred":
                where.append("EXISTS (SELECT 1 FROM stars s WHERE s.project_id = p.id AND s.user_id = ?)")
                params.append(user["id"])
            rows = project_rows(db, " AND ".join(where), tuple(params), sort)
            return render(request, db, "projects.html", scope=scope, sort=sort, search=search,
                          **paginate(request, rows))

    async def dashboard_issues(request: Request) -> Response:
        with open_db(db_path) as db:
            user = current_user(request, db)
            if user is None:
                return to_login(request)
            where, args, filters = issue_filters(request)
            if not (filters["assignee"] or filters["author"]):
                # GitLab's dashboard needs a person to filter by; default to the signed-in user.
                where.append("EXISTS (SELECT 1 FROM issue_assignees a WHERE a.issue_id = i.id AND a.user_id = ?)")
                args.append(user["id"])
                filters["assignee"] = user["username"]
            return render(request, db, "dashboard_issues.html", filters=filters,
                          **listed(request, db, "issues", where, args, filters["state"]))

    async def dashboard_merge_requests(request: Request) -> Response:
        with open_db(db_path) as db:
            user = current_user(request, db)
            if user is None:
                return to_login(request)
            where, args, filters = mr_filters(request)
            if not (filters["reviewer"] or filters["author"]):
                where.append("EXISTS (SELECT 1 FROM mr_reviewers r WHERE r.mr_id = m.id AND r.user_id = ?)")
                args.append(user["id"])
                filters["reviewer"] = user["username"]
            return render(request, db, "dashboard_mrs.html", filters=filters,
                          **listed(request, db, "merge_requests", where, args, filters["state"]))

    async def search(request: Request) -> Response:
        query = request.query_params.get("search", "").strip()
        with open_db(db_path) as db:
            results: dict[str, list[Any]] = {"projects": [], "issues": [], "merge_requests": []}
            if query:
                pattern = f"%{query}%"
                results["projects"] = project_rows(
                    db, "p.namespace || '/' || p.path LIKE ? OR p.description LIKE ?", (pattern, pattern), "name")
                results["issues"] = issue_rows(db, ["(i.title LIKE ? OR i.description LIKE ?)"], [pattern, pattern])
                results["merge_requests"] = mr_rows(db, ["m.title LIKE ?"], [pattern])
            return render(request, db, "search.html", query=query, results=results)

    async def namespace_page(request: Request) -> Response:
        namespace = request.path_params["namespace"]
        with open_db(db_path) as db:
            group = db.execute("SELECT * FROM groups WHERE path = ?", (namespace,)).fetchone()
            person = db.execute("SELECT * FROM users WHERE username = ?", (namespace,)).fetchone()
            if group is None and person is None:
                raise HTTPException(404, "The page you were looking for could not be found.")
            projects = project_rows(db, "p.namespace = ?", (namespace,), "name")
            contributed = [] if person is None else project_rows(
                db, "p.namespace != ? AND EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.user_id = ?)",
                (namespace, person["id"]), "name")
            return render(request, db, "namespace.html", group=group, person=person, projects=projects,
                          contributed=contributed)

    # --- a project --------------------------------------------------------------------------------------

    async def project_page(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            project = context["project"]
            branches = db.execute("SELECT name FROM branches WHERE project_id = ? ORDER BY name", (project["id"],)).fetchall()
            return render(request, db, "project.html", branches=branches, members=members_of(db, project), **context)

    async def edit_project(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            if context["user"] is None:
                return to_login(request)
            require(context["level"], CAN_MAINTAIN, "change the project settings")
            project = context["project"]
            if request.method == "GET":
                return render(request, db, "project_edit.html", **context)
            form = await request.form()
            description = _field(form, "description")
            if len(description) > 2000:
                return render(request, db, "project_edit.html", status=422, error="The description must be at most "
                              "2000 characters.", **context)
            db.execute("UPDATE projects SET description = ? WHERE id = ?", (description, project["id"]))
            touch(db, project)
            flash(request, f"Project '{project['name']}' was successfully updated.")
        return RedirectResponse(context["base"], status_code=303)

    async def toggle_star(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            user, project = context["user"], context["project"]
            if user is None:
                return to_login(request)
            if context["starred"]:
                db.execute("DELETE FROM stars WHERE user_id = ? AND project_id = ?", (user["id"], project["id"]))
            else:
                db.execute("INSERT INTO stars VALUES (?, ?)", (user["id"], project["id"]))
        return RedirectResponse(context["base"], status_code=303)

    async def labels_page(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            labels = db.execute("""SELECT l.*, (SELECT COUNT(*) FROM issue_labels il JOIN issues i ON i.id = il.issue_id
                                   WHERE il.label_id = l.id AND i.state = 'opened') AS open_issues
                                   FROM labels l WHERE l.project_id = ? ORDER BY l.name""",
                                (context["project"]["id"],)).fetchall()
            return render(request, db, "labels.html", labels=labels, **context)

    # --- issues ---------------------------------------------------------------------------------------------

    async def issue_list(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            where, args, filters = issue_filters(request)
            where.append("i.project_id = ?")
            args.append(context["project"]["id"])
            labels = db.execute("SELECT name FROM labels WHERE project_id = ? ORDER BY name",
                                (context["project"]["id"],)).fetchall()
            return render(request, db, "issues.html", filters=filters, labels=labels,
                          members=members_of(db, context["project"]),
                          **listed(request, db, "issues", where, args, filters["state"]), **context)

    async def new_issue(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            user, project = context["user"], context["project"]
            if user is None:
                return to_login(request)
            labels = db.execute("SELECT * FROM labels WHERE project_id = ? ORDER BY name", (project["id"],)).fetchall()
            members = members_of(db, project)
            if request.method == "GET":
                return render(request, db, "issue_new.html", labels=labels, members=members, values={}, errors=[],
                              **context)
            form = await request.form()
            values = {"title": _field(form, "title"), "description": _field(form, "description"),
                      "labels": form.getlist("label_ids"), "assignee": _field(form, "assignee_username")}
            errors = [] if values["title"] else ["Title can't be blank."]
            wanted_labels = [label for label in labels if str(label["id"]) in values["labels"]]
            assignee = None
            if values["assignee"]:
                assignee = next((m for m in members if m["username"] == values["assignee"]), None)
                if assignee is None:
                    errors.append(f"{values['assignee']} is not a member of this project.")
            if (wanted_labels or assignee) and context["level"] < CAN_TRIAGE:
                errors.append("Only project members with the Reporter role or higher can set labels and assignees.")
            if errors:
                return render(request, db, "issue_new.html", status=422, labels=labels, members=members,
                              values=values, errors=errors, **context)
            iid = db.execute("SELECT COALESCE(MAX(iid), 0) + 1 FROM issues WHERE project_id = ?", (project["id"],)).fetchone()[0]
            now = _now()
            issue_id = db.execute(
                """INSERT INTO issues (project_id, iid, title, description, state, author_id, created_at, updated_at)
                   VALUES (?, ?, ?, ?, 'opened', ?, ?, ?)""",
                (project["id"], iid, values["title"], values["description"], user["id"], now, now)).lastrowid
            for label in wanted_labels:
                db.execute("INSERT INTO issue_labels VALUES (?, ?)", (issue_id, label["id"]))
            if assignee is not None:
                db.execute("INSERT INTO issue_assignees SELECT ?, id FROM users WHERE username = ?",
                           (issue_id, assignee["username"]))
            touch(db, project)
        return RedirectResponse(f"{context['base']}/-/issues/{iid}", status_code=303)

    async def issue_page(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            project = context["project"]
            issue = get_issue(db, project, request.path_params["iid"])
            labels = issue_labels(db, issue["id"])
            assignees = issue_assignees(db, issue["id"])
            milestone = db.execute("SELECT * FROM milestones WHERE id = ?", (issue["milestone_id"],)).fetchone()
            all_labels = db.execute("SELECT * FROM labels WHERE project_id = ? ORDER BY name", (project["id"],)).fetchall()
            members = members_of(db, project)
            return render(request, db, "issue.html", issue=issue, labels=labels, assignees=assignees,
                          milestone=milestone, notes=notes_of(db, "issue", issue["id"]),
                          addable_labels=[l for l in all_labels if l["id"] not in {x["id"] for x in labels}],
                          assignable=[m for m in members if m["username"] not in {a["username"] for a in assignees}],
                          **context)

    async def issue_action(request: Request) -> Response:
        """Comment, close, reopen, add/remove a label, assign/unassign: one POST each, then back to the issue."""
        action = request.path_params["action"]
        form = await request.form()
        with open_db(db_path) as db:
            context = project_context(db, request)
            user, project, level = context["user"], context["project"], context["level"]
            if user is None:
                return to_login(request)
            issue = get_issue(db, project, request.path_params["iid"])
            issue_url = f"{context['base']}/-/issues/{issue['iid']}"
            if action == "notes":
                body = _field(form, "note")
                if not body:
                    flash(request, "Your comment could not be posted because it is empty.")
                    return RedirectResponse(issue_url, status_code=303)
                note_id = add_note(db, "issue", issue["id"], user, body, system=False)
                return RedirectResponse(f"{issue_url}#note_{note_id}", status_code=303)
            if action in ("close", "reopen"):
                if issue["author_id"] != user["id"]:
                    require(level, CAN_TRIAGE, f"{action} issues")
                state, closed_at = ("closed", _now()) if action == "close" else ("opened", None)
                if issue["state"] != state:
                    db.execute("UPDATE issues SET state = ?, closed_at = ? WHERE id = ?", (state, closed_at, issue["id"]))
                    add_note(db, "issue", issue["id"], user, "closed" if action == "close" else "reopened", system=True)
            elif action in ("labels", "remove_label"):
                require(level, CAN_TRIAGE, "change labels")
                label = db.execute("SELECT * FROM labels WHERE project_id = ? AND (id = ? OR name = ?)",
                                   (project["id"], _field(form, "label_id"), _field(form, "label_name"))).fetchone()
                if label is None:
                    raise HTTPException(404, "That label does not exist in this project.")
                if action == "labels":
                    added = db.execute("INSERT OR IGNORE INTO issue_labels VALUES (?, ?)", (issue["id"], label["id"]))
                    if added.rowcount:
                        add_note(db, "issue", issue["id"], user, f"added ~{label['name']} label", system=True)
                else:
                    removed = db.execute("DELETE FROM issue_labels WHERE issue_id = ? AND label_id = ?",
                                         (issue["id"], label["id"]))
                    if removed.rowcount:
                        add_note(db, "issue", issue["id"], user, f"removed ~{label['name']} label", system=True)
            elif action in ("assignees", "remove_assignee"):
                require(level, CAN_TRIAGE, "change assignees")
                username = _field(form, "assignee_username")
                person = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
                if person is None:
                    raise HTTPException(404, f"There is no user called {username!r}.")
                if action == "assignees":
                    if not db.execute("SELECT 1 FROM members WHERE project_id = ? AND user_id = ?",
                                      (project["id"], person["id"])).fetchone():
                        raise HTTPException(422, f"{username} is not a member of this project and cannot be assigned.")
                    if db.execute("INSERT OR IGNORE INTO issue_assignees VALUES (?, ?)", (issue["id"], person["id"])).rowcount:
                        add_note(db, "issue", issue["id"], user, f"assigned to @{username}", system=True)
                elif db.execute("DELETE FROM issue_assignees WHERE issue_id = ? AND user_id = ?",
                                (issue["id"], person["id"])).rowcount:
                    add_note(db, "issue", issue["id"], user, f"unassigned @{username}", system=True)
            else:
                raise HTTPException(404, "The page you were looking for could not be found.")
            touch(db, project)
        return RedirectResponse(issue_url, status_code=303)

    # --- merge requests ---------------------------------------------------------------------------------------

    async def mr_list(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            where, args, filters = mr_filters(request)
            where.append("m.project_id = ?")
            args.append(context["project"]["id"])
            return render(request, db, "merge_requests.html", filters=filters,
                          **listed(request, db, "merge_requests", where, args, filters["state"]), **context)

    async def new_mr(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            user, project = context["user"], context["project"]
            if user is None:
                return to_login(request)
            require(context["level"], CAN_DEVELOP, "create merge requests")
            branches = [row["name"] for row in db.execute(
                "SELECT name FROM branches WHERE project_id = ? ORDER BY name", (project["id"],))]
            members = [m for m in members_of(db, project) if m["username"] != user["username"]]
            if request.method == "GET":
                values = {"target_branch": project["default_branch"],
                          "source_branch": request.query_params.get("source_branch", "")}
                return render(request, db, "mr_new.html", branches=branches, members=members, values=values,
                              errors=[], **context)
            form = await request.form()
            values = {key: _field(form, key) for key in ("title", "description", "source_branch", "target_branch")}
            reviewers = [name for name in form.getlist("reviewer_usernames") if name]
            errors = []
            if not values["title"]:
                errors.append("Title can't be blank.")
            if values["source_branch"] not in branches or values["target_branch"] not in branches:
                errors.append("Choose existing source and target branches.")
            elif values["source_branch"] == values["target_branch"]:
                errors.append("The source and target branches must be different.")
            elif db.execute("""SELECT 1 FROM merge_requests WHERE project_id = ? AND source_branch = ? AND target_branch = ?
                               AND state = 'opened'""", (project["id"], values["source_branch"], values["target_branch"])).fetchone():
                errors.append("Another open merge request already exists for this source branch.")
            unknown = [name for name in reviewers if name not in {m["username"] for m in members}]
            if unknown:
                errors.append(f"Reviewers must be project members: {', '.join(unknown)}.")
            if errors:
                return render(request, db, "mr_new.html", status=422, branches=branches, members=members,
                              values=values, errors=errors, **context)
            iid = db.execute("SELECT COALESCE(MAX(iid), 0) + 1 FROM merge_requests WHERE project_id = ?",
                             (project["id"],)).fetchone()[0]
            now = _now()
            mr_id = db.execute(
                """INSERT INTO merge_requests (project_id, iid, title, description, source_branch, target_branch, state,
                   author_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'opened', ?, ?, ?)""",
                (project["id"], iid, values["title"], values["description"], values["source_branch"],
                 values["target_branch"], user["id"], now, now)).lastrowid
            for name in reviewers:
                db.execute("INSERT INTO mr_reviewers SELECT ?, id FROM users WHERE username = ?", (mr_id, name))
            touch(db, project)
        return RedirectResponse(f"{context['base']}/-/merge_requests/{iid}", status_code=303)

    async def mr_page(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            mr = get_mr(db, context["project"], request.path_params["iid"])
            return render(request, db, "merge_request.html", mr=mr, reviewers=mr_reviewers(db, mr["id"]),
                          notes=notes_of(db, "merge_request", mr["id"]), **context)

    async def mr_action(request: Request) -> Response:
        action = request.path_params["action"]
        form = await request.form()
        with open_db(db_path) as db:
            context = project_context(db, request)
            user, project = context["user"], context["project"]
            if user is None:
                return to_login(request)
            mr = get_mr(db, project, request.path_params["iid"])
            mr_url = f"{context['base']}/-/merge_requests/{mr['iid']}"
            if action == "notes":
                body = _field(form, "note")
                if not body:
                    flash(request, "Your comment could not be posted because it is empty.")
                    return RedirectResponse(mr_url, status_code=303)
                note_id = add_note(db, "merge_request", mr["id"], user, body, system=False)
                return RedirectResponse(f"{mr_url}#note_{note_id}", status_code=303)
            if action not in ("close", "reopen", "merge"):
                raise HTTPException(404, "The page you were looking for could not be found.")
            if action == "merge" or mr["author_id"] != user["id"]:
                require(context["level"], CAN_DEVELOP, f"{action} merge requests")
            allowed_from, state, done = {"close": ("opened", "closed", "closed"), "reopen": ("closed", "opened", "reopened"),
                                         "merge": ("opened", "merged", "merged")}[action]
            if mr["state"] != allowed_from:
                raise HTTPException(422, f"Only {allowed_from} merge requests can be {done}.")
            db.execute("UPDATE merge_requests SET state = ?, merged_at = ? WHERE id = ?",
                       (state, _now() if state == "merged" else None, mr["id"]))
            add_note(db, "merge_request", mr["id"], user, done, system=True)
            touch(db, project)
        return RedirectResponse(mr_url, status_code=303)

    # --- members ---------------------------------------------------------------------------------------------

    async def members_page(request: Request) -> Response:
        with open_db(db_path) as db:
            context = project_context(db, request)
            return render(request, db, "members.html", members=members_of(db, context["project"]), error=None, **context)

    async def member_action(request: Request) -> Response:
        """Add a member, change a member's role, or remove a member (Maintainers; only Owners touch Owners)."""
        action = request.path_params.get("action", "add")
        form = await request.form()
        with open_db(db_path) as db:
            context = project_context(db, request)
            user, project, level = context["user"], context["project"], context["level"]
            if user is None:
                return to_login(request)
            require(level, CAN_MAINTAIN, "manage members")
            members_url = f"{context['base']}/-/project_members"
            username = request.path_params.get("username") or _field(form, "username")
            person = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
            current = person and db.execute("SELECT access_level FROM members WHERE project_id = ? AND user_id = ?",
                                            (project["id"], person["id"])).fetchone()
            role_name = _field(form, "access_level")
            new_level = ROLE_LEVELS.get(role_name) or (int(role_name) if role_name.isdigit() else 0)

            def refuse(message: str) -> Response:
                return render(request, db, "members.html", status=422, members=members_of(db, project),
                              error=message, **context)

            if person is None:
                return refuse(f"There is no user called {username!r}.")
            if action != "remove" and new_level not in ROLES:
                return refuse("Choose a role: Guest, Reporter, Developer, Maintainer or Owner.")
            if level < OWNER and ((current and current["access_level"] == OWNER) or new_level == OWNER):
                raise HTTPException(403, "Only an Owner can add, change or remove an Owner.")
            if action == "add":
                if current:
                    return refuse(f"{username} is already a member of this project.")
                db.execute("INSERT INTO members VALUES (?, ?, ?, ?)", (project["id"], person["id"], new_level, _now()))
                flash(request, f"{username} was added to the project as {ROLES[new_level]}.")
            elif not current:
                raise HTTPException(404, f"{username} is not a member of this project.")
            elif action == "role":
                db.execute("UPDATE members SET access_level = ? WHERE project_id = ? AND user_id = ?",
                           (new_level, project["id"], person["id"]))
                flash(request, f"{username}'s role was changed to {ROLES[new_level]}.")
            else:
                db.execute("DELETE FROM members WHERE project_id = ? AND user_id = ?", (project["id"], person["id"]))
                flash(request, f"{username} was removed from the project.")
            touch(db, project)
        return RedirectResponse(members_url, status_code=303)

    # --- errors -----------------------------------------------------------------------------------------------

    async def error_page(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        phrase = HTTPStatus(status).phrase
        detail = getattr(exc, "detail", "")
        if detail == phrase:  # Starlette's own 404/405 carry only the phrase
            detail = "The page you were looking for could not be found." if status == 404 else ""
        with open_db(db_path) as db:
            return render(request, db, "error.html", status=status, status_code=status, phrase=phrase, message=detail)

    project_path = "/{namespace}/{project}"
    routes = [
        Route("/", home),
        Route("/users/sign_in", sign_in, methods=["GET", "POST"]),
        Route("/users/sign_out", sign_out, methods=["POST"]),
        Route("/explore/projects", project_list),
        Route("/dashboard/projects", project_list),
        Route("/dashboard/projects/starred", project_list),
        Route("/dashboard/issues", dashboard_issues),
        Route("/dashboard/merge_requests", dashboard_merge_requests),
        Route("/search", search),
        Route("/{namespace}", namespace_page),
        Route(project_path, project_page),
        Route(project_path + "/edit", edit_project, methods=["GET", "POST"]),
        Route(project_path + "/-/star", toggle_star, methods=["POST"]),
        Route(project_path + "/-/labels", labels_page),
        Route(project_path + "/-/issues", issue_list),
        Route(project_path + "/-/issues/new", new_issue, methods=["GET", "POST"]),
        Route(project_path + "/-/issues/{iid:int}", issue_page),
        Route(project_path + "/-/issues/{iid:int}/{action}", issue_action, methods=["POST"]),
        Route(project_path + "/-/merge_requests", mr_list),
        Route(project_path + "/-/merge_requests/new", new_mr, methods=["GET", "POST"]),
        Route(project_path + "/-/merge_requests/{iid:int}", mr_page),
        Route(project_path + "/-/merge_requests/{iid:int}/{action}", mr_action, methods=["POST"]),
        Route(project_path + "/-/project_members", members_page),
        Route(project_path + "/-/project_members", member_action, methods=["POST"]),
        Route(project_path + "/-/project_members/{username}/{action}", member_action, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET, session_cookie="gitlab_session")],
        exception_handlers={HTTPException: error_page},
    )


async def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Sign a Playwright page in to the code host at base_url."""
    await page.goto(base_url.rstrip("/") + "/users/sign_in")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    if "/users/sign_in" in page.url:
        raise RuntimeError(f"gitlab login failed for {username!r}: check the username and password")
