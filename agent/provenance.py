"""How a run was made, as its run.json (and eval's summary.json) records it: forethought's version and git
commit, the Python, Playwright and Chromium under it, each role's model, every planner setting, the seeds,
the tasks and where they ran; and whether a directory already holds a run, so `--out` is never reused
by accident."""
from __future__ import annotations

import functools
import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from agent.config import PlannerConfig
from agent.llm.catalogue import DEFAULT_MODEL, find_entry
from agent.llm.model_store import cached_entry, cached_models, gguf_file, sha256_of
from agent.llm.protocol import ROLES
from agent.llm.settings import DEFAULT_BASE_URL, LOCAL_SPEC, Settings
from envs.browser import BrowserConfig, BrowserNotFound, find_chromium
from envs.secrets import without_credentials
from traces.recorder import plain_data

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
TRACE_FILE = "trace.jsonl"
TASK_RESULT_FILE = "result.json"
# What the commands write at a run directory's top level; --overwrite removes these and the task
# directories (those holding a trace or a result), and nothing else.
RUN_LEVEL_FILES = (RUN_FILE, RESULTS_FILE, "summary.json", "summary.csv", "frontier.csv", "frontier.svg",
                   "frontier.png", "report.html")
CHECKOUT = Path(__file__).resolve().parent.parent  # the repository, when forethought runs from a checkout


# ------------------------------------------------------------------------------------------ the code


def code_version() -> dict[str, Any]:
    """forethought's version and, run from a git checkout, its commit and whether the tree has uncommitted
    changes to tracked files; no commit when installed from a package or git is missing."""
    try:
        version = importlib.metadata.version("forethought")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    found: dict[str, Any] = {"version": version}
    commit = _git("rev-parse", "HEAD")
    if commit:
        found["commit"] = commit
        found["dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return found


def _git(*args: str) -> str | None:
    """`git args` in the checkout, stripped; None without git, outside a checkout, or on any failure."""
    if not (CHECKOUT / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def version_line() -> str:
    """What `forethought --version` prints: `forethought 0.1.0 (commit 0123…, uncommitted changes)`."""
    code = code_version()
    if "commit" not in code:
        return f"forethought {code['version']}"
    return f"forethought {code['version']} (commit {code['commit']}{', uncommitted changes' if code['dirty'] else ''})"


def software(chromium: str | None) -> dict[str, str | None]:
    """Python, Playwright and Chromium (`chromium_version`), and the machine they ran on."""
    return {"python": platform.python_version(), "playwright": importlib.metadata.version("playwright"),
            "chromium": chromium, "platform": platform.platform()}


def chromium_version(browser: BrowserConfig) -> str | None:
    """The version of the Chromium `browser` launches, from its `--version` (a launched browser's own
    `Browser.version` is the same number); None when it cannot be told."""
    try:
        executable = find_chromium(browser.chromium, browser.headless)
    except BrowserNotFound:
        return None  # the run fails with its own message when it launches the browser
    if executable is None:  # Playwright's own Chromium: only a launched browser tells
        return None
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\d+(\.\d+)+", done.stdout)
    return found.group() if found else None


# ------------------------------------------------------------------------------------------ the models


def role_models(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each role's model spec, endpoint (credentials removed; never a key) and seed; a local model's file
    and sha256. A run's trace records this too, and `run --resume` reads its specs and endpoints back."""
    configured = any(settings.role(r).model or settings.role(r).base_url for r in ROLES)
    models: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        spec = settings.role(role)
        model = spec.model or (None if configured else LOCAL_SPEC)  # as build_llm picks the run default
        if not model:
            continue
        entry: dict[str, Any] = {"model": model, "base_url": without_credentials(spec.base_url), "seed": settings.seed}
        if model.startswith("openai:") and not spec.base_url:
            entry["base_url"] = DEFAULT_BASE_URL
        models[role] = entry | local_model_file(model)
    return models


def local_model_file(spec: str) -> dict[str, Any]:
    """`file` and `sha256` of the GGUF a local spec (local, local:NAME, gguf:PATH) serves; {} for others.
    A cached model's sha256 is the one its record holds (checked when the model was loaded)."""
    scheme, _, name = spec.partition(":")
    if spec == LOCAL_SPEC or scheme == "local":
        name = name or DEFAULT_MODEL
        entry = find_entry(name)
        cached = cached_entry(entry) if entry else next((m for m in cached_models() if m.name == name), None)
        return {"file": str(cached.path), "sha256": cached.sha256} if cached else {}
    if scheme == "gguf":
        path = gguf_file(name)
        cached = next((m for m in cached_models() if m.path.resolve() == path), None)
        stat = path.stat()
        return {"file": str(path), "sha256": cached.sha256 if cached else _sha256(path, stat.st_size, stat.st_mtime_ns)}
    return {}


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, modified_ns: int) -> str:
    """A GGUF file's sha256, once per process per version of the file (an eval records it for every task)."""
    return sha256_of(path)


# ------------------------------------------------------------------------------------------ the record


def describe_run(command: str, *, settings: Settings | None, planner: PlannerConfig | None, strategies: list[str],
                 tasks: list[str], seeds: dict[str, int | None], chromium: str | None,
                 backend: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    """What run.json records of a `command` run; `more` adds the command's own settings. `planner` (None:
    no planner ran) is recorded without its strategy: `strategies` names each one run. `backend`: where
    the tasks ran (default: here, one at a time)."""
    return {
        "command": command, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "forethought": code_version(), "software": software(chromium),
        "models": role_models(settings) if settings is not None else {},
        "strategies": strategies, "planner": _planner_settings(planner), "seeds": seeds, "tasks": tasks,
        "backend": backend or {"name": "local", "workers": 1}, **more,
    }


def _planner_settings(planner: PlannerConfig | None) -> dict[str, Any] | None:
    settings: dict[str, Any] | None = plain_data(planner)
    if settings is not None:
        settings.pop("strategy")
    return settings


def write_run_file(out: Path, record: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def note_resume(out: Path, resumed: dict[str, Any]) -> dict[str, Any]:
    """run.json with `resumed` (how this resume was made) added to its `resumed` list; written back."""
    run_file = out / RUN_FILE
    record = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else {}
    record.setdefault("resumed", []).append(resumed)
    write_run_file(out, record)
    return record


def resume_note(settings: Settings | None, planner: PlannerConfig | None, **more: Any) -> dict[str, Any]:
    """What may change between a run and its resume: when, the code, the models and planner it used,
    and `more` (the backend, say)."""
    return {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "forethought": code_version(),
            "models": role_models(settings) if settings is not None else {},
            "planner": _planner_settings(planner), **more}


# ------------------------------------------------------------------------------------------ used --out


def earlier_run(out: Path) -> Path | None:
    """What shows `out` holds a run: its run.json, results.jsonl, or a task directory's trace."""
    if not out.is_dir():
        return None
    for path in (out / RUN_FILE, out / RESULTS_FILE):
        if path.is_file():
            return path
    return next((p for pattern in (f"*/{TRACE_FILE}", f"*/*/{TRACE_FILE}") for p in sorted(out.glob(pattern))), None)


def used_out_refusal(out: Path, resume: str) -> str | None:
    """Why a fresh run may not go into `out`, when it holds a run (it must not mix with or silently
    replace it); `resume` is how to go on with that run instead."""
    found = earlier_run(out)
    if found is None:
        return None
    return (f"--out {out} already holds a run ({found.relative_to(out)}); pass {resume} to go on with it, or "
            "--overwrite to replace it")


def clear_run(out: Path) -> None:
    """Remove the run in `out` (its top-level files and task directories) and nothing else of `out`; a
    directory that holds no run is left alone."""
    if earlier_run(out) is None:
        return
    for name in RUN_LEVEL_FILES:
        (out / name).unlink(missing_ok=True)
    for child in sorted(p for p in out.iterdir() if p.is_dir() and not p.is_symlink()):
        if _is_task_dir(child):
            shutil.rmtree(child)
            continue
        task_dirs = [p for p in child.iterdir() if p.is_dir() and _is_task_dir(p)]  # eval: STRATEGY/TASK
        for task_dir in task_dirs:
            shutil.rmtree(task_dir)
        if task_dirs and not any(child.iterdir()):
            child.rmdir()


def _is_task_dir(path: Path) -> bool:
    return not path.is_symlink() and ((path / TRACE_FILE).is_file() or (path / TASK_RESULT_FILE).is_file())
