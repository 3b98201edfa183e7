"""Deterministic seed data for the code host: 25 projects, ~300 issues, ~80 merge requests."""
from __future__ import annotations

import hashlib
import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from envs.sites.common import inserted_id
from envs.sites.gitlab import ACCOUNTS

SEED = 20230315
EPOCH_END = datetime(2023, 3, 15, 9, 0, 0)  # every seeded timestamp lies before this instant
OTHER_USERS_PASSWORD = "gitlab-pass-2023"

# GitLab's access levels.
ROLES = {10: "Guest", 20: "Reporter", 30: "Developer", 40: "Maintainer", 50: "Owner"}
ROLE_LEVELS = {name: level for level, name in ROLES.items()}

SCHEMA = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,           -- a group path or a username
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    default_branch TEXT NOT NULL DEFAULT 'main',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (namespace, path)
);
CREATE TABLE members (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    access_level INTEGER NOT NULL CHECK (access_level IN (10, 20, 30, 40, 50)),
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE TABLE stars (
    user_id INTEGER NOT NULL REFERENCES users(id),
    project_id INTEGER NOT NULL REFERENCES projects(id),
    PRIMARY KEY (user_id, project_id)
);
CREATE TABLE branches (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    color TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (project_id, name)
);
CREATE TABLE milestones (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    title TEXT NOT NULL,
    due_date TEXT,
    state TEXT NOT NULL DEFAULT 'active'
);
CREATE TABLE issues (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    iid INTEGER NOT NULL,              -- number within the project, as in the URL
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('opened', 'closed')),
    author_id INTEGER NOT NULL REFERENCES users(id),
    milestone_id INTEGER REFERENCES milestones(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    UNIQUE (project_id, iid)
);
CREATE TABLE issue_labels (
    issue_id INTEGER NOT NULL REFERENCES issues(id),
    label_id INTEGER NOT NULL REFERENCES labels(id),
    PRIMARY KEY (issue_id, label_id)
);
CREATE TABLE issue_assignees (
    issue_id INTEGER NOT NULL REFERENCES issues(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (issue_id, user_id)
);
CREATE TABLE merge_requests (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    iid INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    source_branch TEXT NOT NULL,
    target_branch TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('opened', 'merged', 'closed')),
    author_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    merged_at TEXT,
    UNIQUE (project_id, iid)
);
CREATE TABLE mr_reviewers (
    mr_id INTEGER NOT NULL REFERENCES merge_requests(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (mr_id, user_id)
);
-- Comments on issues and merge requests; system notes record state changes ("closed", "added ~bug").
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    noteable_type TEXT NOT NULL CHECK (noteable_type IN ('issue', 'merge_request')),
    noteable_id INTEGER NOT NULL,
    author_id INTEGER NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    system INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX notes_noteable ON notes(noteable_type, noteable_id);
CREATE INDEX issues_project ON issues(project_id, state);
"""

GROUPS = [
    ("openkit", "OpenKit", "Open source developer tooling."),
    ("datalab", "DataLab", "Data pipelines, notebooks and analysis libraries."),
    ("webtools", "Web Tools", "Front-end components and accessibility tooling."),
    ("infra-team", "Infrastructure", "Deployment, monitoring and internal platform."),
]

# (namespace, path, description, kind); kind picks the vocabulary of the project's issues.
PROJECTS = [
    ("byteblaze", "a11y-syntax-highlighting", "Accessible colour themes for syntax highlighting.", "web"),
    ("byteblaze", "dotfiles", "My shell, editor and git configuration.", "cli"),
    ("byteblaze", "cloud-to-butt", "Browser extension that replaces 'the cloud' with 'my butt'.", "web"),
    ("byteblaze", "empathy-prompts", "Writing prompts for practising empathy in code review.", "docs"),
    ("openkit", "lintkit", "A pluggable linter framework for Python projects.", "cli"),
    ("openkit", "releasebot", "Automates changelogs, tags and release notes.", "cli"),
    ("openkit", "configparse-ng", "A typed configuration file parser.", "lib"),
    ("openkit", "http-mock", "Record and replay HTTP traffic in tests.", "lib"),
    ("openkit", "docs-site", "Documentation website for all OpenKit projects.", "docs"),
    ("datalab", "pipeline-core", "The core DAG scheduler for data pipelines.", "data"),
    ("datalab", "notebook-utils", "Helpers for reproducible Jupyter notebooks.", "data"),
    ("datalab", "geo-tiles", "Vector tile generation from GeoJSON.", "data"),
    ("datalab", "csv-sanitizer", "Cleans and validates messy CSV exports.", "lib"),
    ("datalab", "metrics-dashboard", "Dashboards for pipeline health metrics.", "web"),
    ("webtools", "design-system", "Reusable UI components and design tokens.", "web"),
    ("webtools", "color-contrast-checker", "Checks WCAG colour contrast in stylesheets.", "web"),
    ("webtools", "form-validator", "Declarative form validation for the browser.", "lib"),
    ("webtools", "icon-font", "An open icon font with 800 glyphs.", "web"),
    ("infra-team", "k8s-manifests", "Kubernetes manifests for all services.", "infra"),
    ("infra-team", "terraform-modules", "Shared Terraform modules.", "infra"),
    ("infra-team", "alerting-rules", "Prometheus alerting rules and runbooks.", "infra"),
    ("infra-team", "ci-templates", "Reusable CI pipeline templates.", "infra"),
    ("alex.chen", "recipe-api", "A small REST API for cooking recipes.", "lib"),
    ("alex.chen", "portfolio", "Personal portfolio website.", "web"),
    ("priya.nair", "chess-engine", "A UCI chess engine written in Rust.", "cli"),
]

BASE_LABELS = [
    ("bug", "#d9534f", "Something is not working"),
    ("enhancement", "#5cb85c", "New feature or request"),
    ("documentation", "#428bca", "Improvements or additions to documentation"),
    ("question", "#cc338b", "Further information is requested"),
    ("good first issue", "#7f8c8d", "Good for newcomers"),
    ("help wanted", "#009966", "Extra attention is needed"),
    ("priority::high", "#ff0000", "Fix before the next release"),
    ("priority::low", "#a8d695", "Nice to have"),
]
KIND_LABELS = {
    "web": [("accessibility", "#f0ad4e", "WCAG and screen reader issues"), ("ui", "#8e44ad", "Visual design")],
    "cli": [("cli", "#34495e", "Command-line interface"), ("performance", "#ad8d43", "Speed and memory")],
    "lib": [("api", "#1f78d1", "Public API changes"), ("performance", "#ad8d43", "Speed and memory")],
    "data": [("data-quality", "#e67e22", "Wrong or missing data"), ("performance", "#ad8d43", "Speed and memory")],
    "infra": [("security", "#c0392b", "Security related"), ("monitoring", "#16a085", "Metrics and alerts")],
    "docs": [("content", "#2980b9", "Text and examples"), ("typo", "#95a5a6", "Spelling and grammar")],
}

ISSUE_TITLES = {
    "web": ["{c} is not announced by screen readers", "Dark mode: {c} has low contrast",
            "Add keyboard navigation to {c}", "{c} overflows on mobile", "Support right-to-left layouts in {c}",
            "{c} flickers when resizing"],
    "cli": ["Crash when running with {c}", "Add a --dry-run flag to {c}", "{c} is slow on large repositories",
            "Better error message when {c} fails", "Shell completion for {c}", "Windows support for {c}"],
    "lib": ["{c} raises on empty input", "Type hints missing for {c}", "Deprecate the old {c} API",
            "Document {c} with examples", "Memory leak in {c}", "Add async variant of {c}"],
    "data": ["{c} drops rows with null keys", "Retry failed {c} tasks automatically", "{c} timezone handling is wrong",
             "Parallelise {c}", "Add schema validation to {c}", "{c} uses too much memory"],
    "infra": ["Rotate credentials for {c}", "Alert fatigue from {c}", "Upgrade {c} to the latest version",
              "{c} has no resource limits", "Document the runbook for {c}", "Migrate {c} to the new cluster"],
    "docs": ["Broken links in the {c} page", "Translate {c} into Spanish", "Typo in {c}", "Add a tutorial for {c}",
             "{c} examples are outdated", "Reorganise the {c} section"],
}
COMPONENTS = {
    "web": ["the navigation menu", "the date picker", "the modal dialog", "the search bar", "the footer",
            "the tooltip", "the data table", "the settings page"],
    "cli": ["the config loader", "the init command", "the plugin loader", "the cache", "the watch mode",
            "the release command"],
    "lib": ["parse()", "the Client class", "the retry decorator", "the schema module", "the streaming reader",
            "to_dict()"],
    "data": ["the CSV importer", "the scheduler", "the daily export", "the dedup step", "the tile builder",
             "the metrics job"],
    "infra": ["the ingress controller", "the database backups", "the staging cluster", "the log shipper",
              "the CI runners", "the secrets store"],
    "docs": ["getting started", "the FAQ", "the API reference", "the contributing guide", "the changelog",
             "the installation guide"],
}
SENTENCES = [
    "Steps to reproduce are below.", "This started after the last release.", "I can reproduce it on main.",
    "Expected behaviour: it should just work.", "Happy to open a merge request if someone confirms the approach.",
    "Logs are attached.", "It affects a few users on our team.", "This blocks the next milestone.",
    "A workaround exists but it is awkward.", "Related to the discussion in the last sync.",
]
COMMENTS = [
    "Thanks for the report, I can reproduce this.", "I'll take a look this week.", "Is this still happening on main?",
    "Could you share the exact version?", "+1, we hit this too.", "Fixed in the linked merge request.",
    "Let's discuss this in the next planning meeting.", "Looks good to me.", "I left a few suggestions.",
    "Can we add a test for this?", "Closing as a duplicate would be fine too.", "Nice catch!",
]
MR_TITLES = ["Fix {c} edge case", "Refactor {c}", "Add tests for {c}", "Improve performance of {c}",
             "Update documentation for {c}", "Draft: rewrite {c}"]

PEOPLE = ["Priya Nair", "Alex Chen", "Maria Garcia", "Tom Okafor", "Lena Schmidt", "Kenji Sato", "Sara Ahmed",
          "Diego Rossi", "Emma Wilson", "Omar Haddad", "Julia Novak", "Ravi Patel", "Chloe Martin", "Ben Cohen",
          "Aisha Bello", "Lucas Silva", "Nora Berg", "Ivan Petrov", "Mei Lin", "Hugo Lambert", "Zara Khan",
          "Felix Wagner", "Grace Kim", "Mateo Diaz", "Olivia Brown", "Samir Gupta", "Hannah Lee", "Noah Fischer",
          "Yuki Tanaka", "Ella Moreau", "Leo Costa", "Isla Murphy", "Adam Kowalski", "Ruth Mensah", "Victor Hugo",
          "Anya Ivanova", "Carlos Ruiz", "Fatima Zahra", "George Adams", "Ingrid Holm"]


def password_hash(password: str) -> str:
    """A salted SHA-256 with a fixed salt: the site is a local test fixture, not a bank."""
    return hashlib.sha256(("gitlab$" + password).encode()).hexdigest()


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _between(rng: random.Random, earliest: datetime, latest: datetime = EPOCH_END) -> datetime:
    span = max(int((latest - earliest).total_seconds()), 1)
    return earliest + timedelta(seconds=rng.randint(0, span))


def seed(db_path: Path) -> None:
    """Create the code host's schema in a new SQLite file at db_path and fill it deterministically."""
    db_path = Path(db_path)
    if db_path.exists():
        db_path.unlink()
    rng = random.Random(SEED)
    conn = sqlite3.connect(db_path)
    try:
        conn.executescript(SCHEMA)
        start = EPOCH_END - timedelta(days=365)
        users: dict[str, int] = {}
        named = {"byteblaze": "Byte Blaze", "alex.chen": "Alex Chen", "root": "Administrator"}
        accounts = [(name, password, role == "admin") for name, password, role in ACCOUNTS]
        others = [(person.lower().replace(" ", "."), OTHER_USERS_PASSWORD, False) for person in PEOPLE]
        for username, password, is_admin in accounts + [o for o in others if o[0] not in named]:
            full_name = named.get(username) or next(p for p in PEOPLE if p.lower().replace(" ", ".") == username)
            joined = start - timedelta(days=rng.randint(1, 900))
            cursor = conn.execute(
                "INSERT INTO users (username, name, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)",
                (username, full_name, password_hash(password), int(is_admin), _fmt(joined)))
            users[username] = inserted_id(cursor)
        people = [name for name in users if name != "root"]
        for path, name, description in GROUPS:
            conn.execute("INSERT INTO groups (path, name, description) VALUES (?, ?, ?)", (path, name, description))
        group_owner = {"openkit": "priya.nair", "datalab": "maria.garcia", "webtools": "byteblaze",
                       "infra-team": "tom.okafor"}

        for namespace, path, description, kind in PROJECTS:
            created = _between(rng, start, start + timedelta(days=200))
            cursor = conn.execute(
                "INSERT INTO projects (namespace, path, name, description, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (namespace, path, path, description, _fmt(created), _fmt(created)))
            project_id = inserted_id(cursor)
            owner = namespace if namespace in users else group_owner[namespace]
            members = {owner: 50}
            candidates = [p for p in people if p != owner and not (p == "alex.chen" and rng.random() < 0.6)]
            if owner != "byteblaze" and namespace != "infra-team" and rng.random() < 0.5:
                members["byteblaze"] = rng.choice([30, 40, 20])
            for username in rng.sample(candidates, rng.randint(3, 7)):
                members.setdefault(username, rng.choice([10, 20, 30, 30, 30, 40]))
            for username, level in members.items():
                conn.execute("INSERT INTO members VALUES (?, ?, ?, ?)",
                             (project_id, users[username], level, _fmt(created)))
            for username in rng.sample(people, rng.choice([0, 1, 2, 3, 5, 8, 12, 20])):
                conn.execute("INSERT INTO stars VALUES (?, ?)", (users[username], project_id))

            label_ids: list[int] = []
            for name, color, label_description in BASE_LABELS + KIND_LABELS[kind]:
                label_ids.append(inserted_id(conn.execute(
                    "INSERT INTO labels (project_id, name, color, description) VALUES (?, ?, ?, ?)",
                    (project_id, name, color, label_description))))
            milestone_ids = [inserted_id(conn.execute(
                "INSERT INTO milestones (project_id, title, due_date, state) VALUES (?, ?, ?, ?)",
                (project_id, title, due, state)))
                for title, due, state in [("v1.0", "2022-12-31", "closed"), ("v1.1", "2023-06-30", "active")]]

            developers = [u for u, level in members.items() if level >= 30]
            titles_seen: set[str] = set()
            for iid in range(1, 13):
                title = rng.choice(ISSUE_TITLES[kind]).format(c=rng.choice(COMPONENTS[kind]))
                while title in titles_seen:
                    title = rng.choice(ISSUE_TITLES[kind]).format(c=rng.choice(COMPONENTS[kind]))
                titles_seen.add(title)
                title = title[0].upper() + title[1:]
                opened = _between(rng, created)
                state = "opened" if rng.random() < 0.6 else "closed"
                closed_at = _fmt(_between(rng, opened)) if state == "closed" else None
                author = rng.choice(list(members) + rng.sample(people, 2))
                issue_id = inserted_id(conn.execute(
                    """INSERT INTO issues (project_id, iid, title, description, state, author_id, milestone_id,
                       created_at, updated_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (project_id, iid, title, " ".join(rng.sample(SENTENCES, 3)), state, users[author],
                     rng.choice(milestone_ids + [None, None]), _fmt(opened), closed_at or _fmt(opened), closed_at),
                ))
                for label_id in rng.sample(label_ids, rng.choice([0, 1, 1, 2, 2, 3])):
                    conn.execute("INSERT INTO issue_labels VALUES (?, ?)", (issue_id, label_id))
                for username in rng.sample(developers, min(len(developers), rng.choice([0, 1, 1, 2]))):
                    conn.execute("INSERT INTO issue_assignees VALUES (?, ?)", (issue_id, users[username]))
                for _ in range(rng.choice([0, 1, 2, 3])):
                    conn.execute(
                        "INSERT INTO notes (noteable_type, noteable_id, author_id, body, created_at)"
                        " VALUES ('issue', ?, ?, ?, ?)",
                        (issue_id, users[rng.choice(list(members))], rng.choice(COMMENTS), _fmt(_between(rng, opened))))

            conn.execute("INSERT INTO branches VALUES (?, 'main')", (project_id,))
            for iid in range(1, rng.choice([2, 3, 3, 4, 5]) + 1):
                component = rng.choice(COMPONENTS[kind])
                title = rng.choice(MR_TITLES).format(c=component)
                slug = "".join(ch if ch.isalnum() else "-" for ch in component.lower()).strip("-")
                branch = f"{rng.choice(['fix', 'feature', 'chore'])}/{slug}-{iid}"
                conn.execute("INSERT INTO branches VALUES (?, ?)", (project_id, branch))
                opened = _between(rng, created)
                state = rng.choice(["opened", "opened", "merged", "merged", "closed"])
                merged_at = _fmt(_between(rng, opened)) if state == "merged" else None
                author = rng.choice(developers)
                mr_id = inserted_id(conn.execute(
                    """INSERT INTO merge_requests (project_id, iid, title, description, source_branch, target_branch,
                       state, author_id, created_at, updated_at, merged_at)
                       VALUES (?, ?, ?, ?, ?, 'main', ?, ?, ?, ?, ?)""",
                    (project_id, iid, title, " ".join(rng.sample(SENTENCES, 2)), branch, state, users[author],
                     _fmt(opened), merged_at or _fmt(opened), merged_at)))
                reviewers = [u for u in developers if u != author]
                for username in rng.sample(reviewers, min(len(reviewers), rng.choice([0, 1, 2]))):
                    conn.execute("INSERT INTO mr_reviewers VALUES (?, ?)", (mr_id, users[username]))
                for _ in range(rng.choice([0, 1, 2])):
                    conn.execute(
                        """INSERT INTO notes (noteable_type, noteable_id, author_id, body, created_at)
                           VALUES ('merge_request', ?, ?, ?, ?)""",
                        (mr_id, users[rng.choice(list(members))], rng.choice(COMMENTS), _fmt(_between(rng, opened))))
            for extra in rng.sample(["develop", "release/1.1", "docs/readme", "experiment/cache"], 2):
                conn.execute("INSERT INTO branches VALUES (?, ?)", (project_id, extra))
        conn.commit()
    finally:
        conn.close()
