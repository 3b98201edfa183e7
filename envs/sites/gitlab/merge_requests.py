"""The code host's merge requests: a project's list, a new merge request, its page, comments, close, reopen, merge."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from envs.sites.gitlab.web import (
    CAN_DEVELOP,
    add_note,
    database,
    flash,
    form_field,
    get_mr,
    listed,
    members_of,
    mr_filters,
    mr_reviewers,
    notes_of,
    now,
    project_context,
    render,
    require,
    to_login,
    touch,
)


async def mr_list(request: Request) -> Response:
    with database(request) as db:
        context = project_context(db, request)
        where, args, filters = mr_filters(request)
        where.append("m.project_id = ?")
        args.append(context["project"]["id"])
        return render(request, db, "merge_requests.html", filters=filters,
                      **listed(request, db, "merge_requests", where, args, filters["state"]), **context)


async def new_mr(request: Request) -> Response:
    with database(request) as db:
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
        values = {key: form_field(form, key) for key in ("title", "description", "source_branch", "target_branch")}
        reviewers = [str(name) for name in form.getlist("reviewer_usernames") if name]
        errors = []
        if not values["title"]:
            errors.append("Title can't be blank.")
        if values["source_branch"] not in branches or values["target_branch"] not in branches:
            errors.append("Choose existing source and target branches.")
        elif values["source_branch"] == values["target_branch"]:
            errors.append("The source and target branches must be different.")
        elif db.execute("""SELECT 1 FROM merge_requests WHERE project_id = ? AND source_branch = ?
                           AND target_branch = ? AND state = 'opened'""",
                        (project["id"], values["source_branch"], values["target_branch"])).fetchone():
            errors.append("Another open merge request already exists for this source branch.")
        unknown = [name for name in reviewers if name not in {m["username"] for m in members}]
        if unknown:
            errors.append(f"Reviewers must be project members: {', '.join(unknown)}.")
        if errors:
            return render(request, db, "mr_new.html", status=422, branches=branches, members=members,
                          values=values, errors=errors, **context)
        iid = db.execute("SELECT COALESCE(MAX(iid), 0) + 1 FROM merge_requests WHERE project_id = ?",
                         (project["id"],)).fetchone()[0]
        created = now()
        mr_id = db.execute(
            """INSERT INTO merge_requests (project_id, iid, title, description, source_branch, target_branch, state,
               author_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'opened', ?, ?, ?)""",
            (project["id"], iid, values["title"], values["description"], values["source_branch"],
             values["target_branch"], user["id"], created, created)).lastrowid
        for name in reviewers:
            db.execute("INSERT INTO mr_reviewers SELECT ?, id FROM users WHERE username = ?", (mr_id, name))
        touch(db, project)
    return RedirectResponse(f"{context['base']}/-/merge_requests/{iid}", status_code=303)


async def mr_page(request: Request) -> Response:
    with database(request) as db:
        context = project_context(db, request)
        mr = get_mr(db, context["project"], request.path_params["iid"])
        return render(request, db, "merge_request.html", mr=mr, reviewers=mr_reviewers(db, mr["id"]),
                      notes=notes_of(db, "merge_request", mr["id"]), **context)


async def mr_action(request: Request) -> Response:
    action = request.path_params["action"]
    form = await request.form()
    with database(request) as db:
        context = project_context(db, request)
        user, project = context["user"], context["project"]
        if user is None:
            return to_login(request)
        mr = get_mr(db, project, request.path_params["iid"])
        mr_url = f"{context['base']}/-/merge_requests/{mr['iid']}"
        if action == "notes":
            body = form_field(form, "note")
            if not body:
                flash(request, "Your comment could not be posted because it is empty.")
                return RedirectResponse(mr_url, status_code=303)
            note_id = add_note(db, "merge_request", mr["id"], user, body, system=False)
            return RedirectResponse(f"{mr_url}#note_{note_id}", status_code=303)
        if action not in ("close", "reopen", "merge"):
            raise HTTPException(404, "The page you were looking for could not be found.")
        if action == "merge" or mr["author_id"] != user["id"]:
            require(context["level"], CAN_DEVELOP, f"{action} merge requests")
        allowed_from, state, done = {"close": ("opened", "closed", "closed"),
                                     "reopen": ("closed", "opened", "reopened"),
                                     "merge": ("opened", "merged", "merged")}[action]
        if mr["state"] != allowed_from:
            raise HTTPException(422, f"Only {allowed_from} merge requests can be {done}.")
        db.execute("UPDATE merge_requests SET state = ?, merged_at = ? WHERE id = ?",
                   (state, now() if state == "merged" else None, mr["id"]))
        add_note(db, "merge_request", mr["id"], user, done, system=True)
        touch(db, project)
    return RedirectResponse(mr_url, status_code=303)
