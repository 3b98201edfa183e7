"""The code host's issues: a project's issue list, a new issue, an issue's page and what can be done to it."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from envs.sites.gitlab.web import (
    CAN_TRIAGE,
    add_note,
    database,
    flash,
    form_field,
    get_issue,
    issue_assignees,
    issue_filters,
    issue_labels,
    listed,
    members_of,
    notes_of,
    now,
    project_context,
    render,
    require,
    to_login,
    touch,
)


async def issue_list(request: Request) -> Response:
    with database(request) as db:
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
    with database(request) as db:
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
        values = {"title": form_field(form, "title"), "description": form_field(form, "description"),
                  "labels": form.getlist("label_ids"), "assignee": form_field(form, "assignee_username")}
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
        iid = db.execute("SELECT COALESCE(MAX(iid), 0) + 1 FROM issues WHERE project_id = ?",
                         (project["id"],)).fetchone()[0]
        created = now()
        issue_id = db.execute(
            """INSERT INTO issues (project_id, iid, title, description, state, author_id, created_at, updated_at)
               VALUES (?, ?, ?, ?, 'opened', ?, ?, ?)""",
            (project["id"], iid, values["title"], values["description"], user["id"], created, created)).lastrowid
        for label in wanted_labels:
            db.execute("INSERT INTO issue_labels VALUES (?, ?)", (issue_id, label["id"]))
        if assignee is not None:
            db.execute("INSERT INTO issue_assignees SELECT ?, id FROM users WHERE username = ?",
                       (issue_id, assignee["username"]))
        touch(db, project)
    return RedirectResponse(f"{context['base']}/-/issues/{iid}", status_code=303)


async def issue_page(request: Request) -> Response:
    with database(request) as db:
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
                      addable_labels=[label for label in all_labels if label["id"] not in {x["id"] for x in labels}],
                      assignable=[m for m in members if m["username"] not in {a["username"] for a in assignees}],
                      **context)


async def issue_action(request: Request) -> Response:
    """Comment, close, reopen, add/remove a label, assign/unassign: one POST each, then back to the issue."""
    action = request.path_params["action"]
    form = await request.form()
    with database(request) as db:
        context = project_context(db, request)
        user, project, level = context["user"], context["project"], context["level"]
        if user is None:
            return to_login(request)
        issue = get_issue(db, project, request.path_params["iid"])
        issue_url = f"{context['base']}/-/issues/{issue['iid']}"
        if action == "notes":
            body = form_field(form, "note")
            if not body:
                flash(request, "Your comment could not be posted because it is empty.")
                return RedirectResponse(issue_url, status_code=303)
            note_id = add_note(db, "issue", issue["id"], user, body, system=False)
            return RedirectResponse(f"{issue_url}#note_{note_id}", status_code=303)
        if action in ("close", "reopen"):
            if issue["author_id"] != user["id"]:
                require(level, CAN_TRIAGE, f"{action} issues")
            state, closed_at = ("closed", now()) if action == "close" else ("opened", None)
            if issue["state"] != state:
                db.execute("UPDATE issues SET state = ?, closed_at = ? WHERE id = ?", (state, closed_at, issue["id"]))
                add_note(db, "issue", issue["id"], user, "closed" if action == "close" else "reopened", system=True)
        elif action in ("labels", "remove_label"):
            require(level, CAN_TRIAGE, "change labels")
            label = db.execute("SELECT * FROM labels WHERE project_id = ? AND (id = ? OR name = ?)",
                               (project["id"], form_field(form, "label_id"), form_field(form, "label_name"))).fetchone()
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
            username = form_field(form, "assignee_username")
            person = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
            if person is None:
                raise HTTPException(404, f"There is no user called {username!r}.")
            if action == "assignees":
                if not db.execute("SELECT 1 FROM members WHERE project_id = ? AND user_id = ?",
                                  (project["id"], person["id"])).fetchone():
                    raise HTTPException(422, f"{username} is not a member of this project and cannot be assigned.")
                added = db.execute("INSERT OR IGNORE INTO issue_assignees VALUES (?, ?)", (issue["id"], person["id"]))
                if added.rowcount:
                    add_note(db, "issue", issue["id"], user, f"assigned to @{username}", system=True)
            elif db.execute("DELETE FROM issue_assignees WHERE issue_id = ? AND user_id = ?",
                            (issue["id"], person["id"])).rowcount:
                add_note(db, "issue", issue["id"], user, f"unassigned @{username}", system=True)
        else:
            raise HTTPException(404, "The page you were looking for could not be found.")
        touch(db, project)
    return RedirectResponse(issue_url, status_code=303)
