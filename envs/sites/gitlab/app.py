"""The code-hosting web app: server-rendered pages over the SQLite database written by seed.py.

This module wires the routes and serves signing in, the project lists and dashboards, search,
namespaces, a project's own pages and its members; issues.py and merge_requests.py serve those, and
web.py holds what every page shares.
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
from envs.sites.gitlab.issues import issue_action, issue_list, issue_page, new_issue
from envs.sites.gitlab.merge_requests import mr_action, mr_list, mr_page, new_mr
from envs.sites.gitlab.seed import ROLE_LEVELS, ROLES, password_hash
from envs.sites.gitlab.web import (
    CAN_MAINTAIN,
    OWNER,
    current_user,
    database,
    flash,
    form_field,
    issue_filters,
    issue_rows,
    listed,
    members_of,
    mr_filters,
    mr_rows,
    now,
    paginate,
    project_context,
    project_rows,
    render,
    require,
    to_login,
    touch,
)

SESSION_SECRET = "forethought-gitlab-session"  # fixed: sessions only matter within one local run
PROJECT_PATH = "/{namespace}/{project}"


def create_app(db_path: Path) -> Starlette:
    """The code host as an ASGI app serving the database at db_path (created by seed.seed)."""
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
        Route(PROJECT_PATH, project_page),
        Route(PROJECT_PATH + "/edit", edit_project, methods=["GET", "POST"]),
        Route(PROJECT_PATH + "/-/star", toggle_star, methods=["POST"]),
        Route(PROJECT_PATH + "/-/labels", labels_page),
        Route(PROJECT_PATH + "/-/issues", issue_list),
        Route(PROJECT_PATH + "/-/issues/new", new_issue, methods=["GET", "POST"]),
        Route(PROJECT_PATH + "/-/issues/{iid:int}", issue_page),
        Route(PROJECT_PATH + "/-/issues/{iid:int}/{action}", issue_action, methods=["POST"]),
        Route(PROJECT_PATH + "/-/merge_requests", mr_list),
        Route(PROJECT_PATH + "/-/merge_requests/new", new_mr, methods=["GET", "POST"]),
        Route(PROJECT_PATH + "/-/merge_requests/{iid:int}", mr_page),
        Route(PROJECT_PATH + "/-/merge_requests/{iid:int}/{action}", mr_action, methods=["POST"]),
        Route(PROJECT_PATH + "/-/project_members", members_page),
        Route(PROJECT_PATH + "/-/project_members", member_action, methods=["POST"]),
        Route(PROJECT_PATH + "/-/project_members/{username}/{action}", member_action, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET, session_cookie="gitlab_session")],
        exception_handlers={HTTPException: error_page},
    )
    app.state.db_path = Path(db_path)  # where web.database() finds it
    return app




async def sign_in(request: Request) -> Response:
    redirect_to = local_path(request.query_params.get("redirect_to", "/"))
    with database(request) as db:
        if request.method == "GET":
            return render(request, db, "sign_in.html", redirect_to=redirect_to, error=None, login="")
        form = await request.form()
        login_name = form_field(form, "username")
        user = db.execute("SELECT * FROM users WHERE username = ?", (login_name,)).fetchone()
        if user is None or user["password_hash"] != password_hash(str(form.get("password", ""))):
            return render(request, db, "sign_in.html", status=401, redirect_to=redirect_to, login=login_name,
                          error="Invalid login or password.")
    request.session["username"] = user["username"]
    return RedirectResponse(local_path(form_field(form, "redirect_to") or redirect_to), status_code=303)


async def sign_out(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/users/sign_in", status_code=303)


async def home(request: Request) -> Response:
    with database(request) as db:
        signed_in = current_user(request, db) is not None
    return RedirectResponse("/dashboard/projects" if signed_in else "/explore/projects", status_code=303)


async def project_list(request: Request) -> Response:
    scope = {"/explore/projects": "all", "/dashboard/projects": "yours",
             "/dashboard/projects/starred": "starred"}[request.url.path]
    sort = request.query_params.get("sort", "updated")
    search = request.query_params.get("search", "").strip()
    with database(request) as db:
        user = current_user(request, db)
        where, params = ["(p.namespace || '/' || p.path LIKE ? OR p.description LIKE ?)"], [f"%{search}%"] * 2
        if scope != "all":
            if user is None:
                return to_login(request)
            if scope == "yours":
                where.append("EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.user_id = ?)")
            else:
                where.append("EXISTS (SELECT 1 FROM stars s WHERE s.project_id = p.id AND s.user_id = ?)")
            params.append(user["id"])
        rows = project_rows(db, " AND ".join(where), tuple(params), sort)
        return render(request, db, "projects.html", scope=scope, sort=sort, search=search,
                      **paginate(request, rows))


async def dashboard_issues(request: Request) -> Response:
    with database(request) as db:
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
    with database(request) as db:
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
    with database(request) as db:
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
    with database(request) as db:
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


async def project_page(request: Request) -> Response:
    with database(request) as db:
        context = project_context(db, request)
        project = context["project"]
        branches = db.execute("SELECT name FROM branches WHERE project_id = ? ORDER BY name",
                              (project["id"],)).fetchall()
        return render(request, db, "project.html", branches=branches, members=members_of(db, project), **context)


async def edit_project(request: Request) -> Response:
    with database(request) as db:
        context = project_context(db, request)
        if context["user"] is None:
            return to_login(request)
        require(context["level"], CAN_MAINTAIN, "change the project settings")
        project = context["project"]
        if request.method == "GET":
            return render(request, db, "project_edit.html", **context)
        form = await request.form()
        description = form_field(form, "description")
        if len(description) > 2000:
            return render(request, db, "project_edit.html", status=422, error="The description must be at most "
                          "2000 characters.", **context)
        db.execute("UPDATE projects SET description = ? WHERE id = ?", (description, project["id"]))
        touch(db, project)
        flash(request, f"Project '{project['name']}' was successfully updated.")
    return RedirectResponse(context["base"], status_code=303)


async def toggle_star(request: Request) -> Response:
    with database(request) as db:
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
    with database(request) as db:
        context = project_context(db, request)
        labels = db.execute("""SELECT l.*, (SELECT COUNT(*) FROM issue_labels il JOIN issues i ON i.id = il.issue_id
                               WHERE il.label_id = l.id AND i.state = 'opened') AS open_issues
                               FROM labels l WHERE l.project_id = ? ORDER BY l.name""",
                            (context["project"]["id"],)).fetchall()
        return render(request, db, "labels.html", labels=labels, **context)


async def members_page(request: Request) -> Response:
    with database(request) as db:
        context = project_context(db, request)
        return render(request, db, "members.html", members=members_of(db, context["project"]), error=None, **context)


async def member_action(request: Request) -> Response:
    """Add a member, change a member's role, or remove a member (Maintainers; only Owners touch Owners)."""
    action = request.path_params.get("action", "add")
    form = await request.form()
    with database(request) as db:
        context = project_context(db, request)
        user, project, level = context["user"], context["project"], context["level"]
        if user is None:
            return to_login(request)
        require(level, CAN_MAINTAIN, "manage members")
        members_url = f"{context['base']}/-/project_members"
        username = request.path_params.get("username") or form_field(form, "username")
        person = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        current = person and db.execute("SELECT access_level FROM members WHERE project_id = ? AND user_id = ?",
                                        (project["id"], person["id"])).fetchone()
        role_name = form_field(form, "access_level")
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
            db.execute("INSERT INTO members VALUES (?, ?, ?, ?)", (project["id"], person["id"], new_level, now()))
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


async def error_page(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    phrase = HTTPStatus(status).phrase
    detail = getattr(exc, "detail", "")
    if detail == phrase:  # Starlette's own 404/405 carry only the phrase
        detail = "The page you were looking for could not be found." if status == 404 else ""
    with database(request) as db:
        return render(request, db, "error.html", status=status, status_code=status, phrase=phrase, message=detail)


async def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Sign a Playwright page in to the code host at base_url."""
    await page.goto(base_url.rstrip("/") + "/users/sign_in")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    if "/users/sign_in" in page.url:
        raise RuntimeError(f"gitlab login failed for {username!r}: check the username and password")
