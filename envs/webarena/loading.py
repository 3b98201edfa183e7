"""Task files: one JSON file (a task or a list of them) or a directory of `<id>.json` files, and
WebArena's 812 official tasks from the webarena-verified package, each joined with its
WebArena-Verified evaluators (both files of the package) so every task has both."""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from envs.webarena.config import TaskConfig, TaskConfigError, parse_task


def load_tasks(path: str | Path, *, site_urls: Mapping[str, str] | None = None,
               use_env: bool = True) -> list[TaskConfig]:
    """Load tasks from a JSON file (one task or a list) or a directory of `<id>.json` files."""
    path = Path(path)
    if path.is_dir():
        # <id>.json in numeric order (2 before 10), other names after them.
        files = sorted(path.glob("*.json"),
                       key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.stem))
        if not files:
            raise TaskConfigError(f"{path}: no .json task files in this directory")
        tasks = [t for f in files for t in _load_file(f, site_urls, use_env)]
    elif path.is_file():
        tasks = _load_file(path, site_urls, use_env)
    else:
        raise TaskConfigError(f"{path}: no such task file or directory")
    _reject_duplicate_ids(tasks)
    return tasks


def _load_file(path: Path, site_urls: Mapping[str, str] | None, use_env: bool) -> list[TaskConfig]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskConfigError(f"{path}: not valid JSON ({exc})") from exc
    items = data if isinstance(data, list) else [data]
    return [parse_task(item, site_urls=site_urls, use_env=use_env, source=str(path), index=i)
            for i, item in enumerate(items)]


def _reject_duplicate_ids(tasks: Iterable[TaskConfig]) -> None:
    seen: dict[str, str] = {}
    for task in tasks:
        key = str(task.task_id)
        if key in seen:
            raise TaskConfigError(f"task {task.task_id}: task_id appears twice ({seen[key]} and {task.source})")
        seen[key] = task.source


def webarena_verified_dataset_dir() -> Path:
    """Where the webarena-verified package keeps its task files."""
    # Found, not imported: importing the package takes seconds (pydantic models, CLI).
    spec = importlib.util.find_spec("webarena_verified")
    if spec is None or not spec.submodule_search_locations:
        raise TaskConfigError(
            "the official WebArena tasks come from the webarena-verified package: pip install webarena-verified"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "dataset"


def load_webarena_official(*, site_urls: Mapping[str, str] | None = None, use_env: bool = True) -> list[TaskConfig]:
    """WebArena's 812 tasks from the webarena-verified package: the original configs (test.raw.json),
    each joined with its WebArena-Verified evaluators and revision."""
    dataset = webarena_verified_dataset_dir()
    original = load_tasks(dataset / "test.raw.json", site_urls=site_urls, use_env=use_env)
    verified = {t.task_id: t for t in load_tasks(dataset / "webarena-verified.json", site_urls=site_urls,
                                                   use_env=use_env)}
    missing = [t.task_id for t in original if t.task_id not in verified]
    if missing:
        raise TaskConfigError(f"tasks {missing[:10]} of test.raw.json are missing from webarena-verified.json")
    return [replace(t, verified_eval=verified[t.task_id].verified_eval, revision=verified[t.task_id].revision)
            for t in original]
