"""The local suite: WebArena-format tasks over our own sites, and the sites to run them on.

Our shop plays WebArena's __SHOPPING__, the forum __REDDIT__ and the code host __GITLAB__, so the
task files (local_tasks/*.json) are plain WebArena configs and the same runner and evaluators work
on a real WebArena deployment. Each task also carries, under the "oracle" key WebArena ignores, an
action sequence that solves it and wrong sequences its evaluator must reject (see oracle.py).

A task that needs a signed-in user names its storage state by convention:
`"storage_state": "./.auth/<site>.<username>.json"` (site: shop, forum or gitlab). LocalSites writes
that file by logging in through the site the first time a task asks for it.

Running the suite:

    configs = load_local_suite()                      # placeholders unresolved: list, count, filter
    with LocalSites() as sites:
        for config in load_local_suite(sites.site_urls):
            task = sites.task(config)                 # resets the task's sites when it is set up
            score, info = await run_oracle(env, task, oracle_of(config, sites.site_urls).actions)
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.sites.server import SiteServer, login_storage_state, site_accounts
from envs.webarena.config import TaskConfig, TaskConfigError, site_url_mapping
from envs.webarena.loading import load_tasks
from envs.webarena.task import WebArenaTask

TASKS_DIR = Path(__file__).parent / "local_tasks"
# WebArena's site names (a config's "sites") -> the local site that plays each.
LOCAL_SITE_FOR: dict[str, str] = {"shopping": "shop", "reddit": "forum", "gitlab": "gitlab"}
WEBARENA_NAME_OF: dict[str, str] = {local: webarena for webarena, local in LOCAL_SITE_FOR.items()}
AUTH_SUBDIR = ".auth"


def load_local_suite(site_urls: Mapping[str, str] | None = None) -> list[TaskConfig]:
    """Every task of the local suite. With `site_urls` (e.g. LocalSites.site_urls) the placeholders
    are resolved; without, the tasks load for listing but cannot run. Env vars are never read: the
    local suite runs on the local sites."""
    return load_tasks(TASKS_DIR, site_urls=site_urls, use_env=False)


def storage_state_path(site: str, username: str) -> str:
    """The storage_state a task config writes to start signed in as `username` on a local site."""
    return f"./{AUTH_SUBDIR}/{site}.{username}.json"


def parse_storage_state_path(path: str) -> tuple[str, str]:
    """(site, username) of a storage_state path written by storage_state_path()."""
    name = Path(path).name
    site, dot, rest = name.partition(".")
    if not dot or not rest.endswith(".json") or site not in WEBARENA_NAME_OF or len(rest) <= len(".json"):
        raise TaskConfigError(
            f"storage_state {path!r} does not name a local login: write "
            f"{storage_state_path('<site>', '<username>')!r} with site one of {', '.join(WEBARENA_NAME_OF)}")
    return site, rest[: -len(".json")]


# ----------------------------------------------------------------------------------------- oracle


@dataclass(frozen=True)
class Oracle:
    """A task's solution and the wrong attempts its evaluator must reject (action sequences)."""

    actions: tuple[str, ...]
    wrong: tuple[tuple[str, ...], ...]

    @property
    def steps(self) -> int:
        """Browser actions before the final answer."""
        return len(self.actions) - 1


def oracle_of(config: TaskConfig, site_urls: Mapping[str, str] | None = None) -> Oracle:
    """The "oracle" of a task config, with site placeholders (`goto('__SHOPPING__/cart')`) resolved
    from `site_urls` (keys as for load_local_suite). Raises TaskConfigError when it is missing or
    malformed."""
    raw = config.raw.get("oracle")
    where = f"task {config.task_id}: oracle"
    if not isinstance(raw, dict):
        raise TaskConfigError(f'{where} must be an object {{"actions": [...], "wrong": [[...], ...]}}, got {raw!r}')
    actions, wrong = raw.get("actions"), raw.get("wrong")
    if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
        raise TaskConfigError(f"{where}.actions must be a non-empty list of action strings, got {actions!r}")
    if (not isinstance(wrong, list) or not wrong
            or not all(isinstance(seq, list) and seq and all(isinstance(a, str) for a in seq) for seq in wrong)):
        raise TaskConfigError(f"{where}.wrong must be a non-empty list of non-empty action lists, got {wrong!r}")
    mapping = site_url_mapping(site_urls, use_env=False)

    def resolve(step: str) -> str:
        for placeholder, url in mapping.items():
            step = step.replace(placeholder, url)
        return step

    return Oracle(tuple(resolve(a) for a in actions), tuple(tuple(resolve(a) for a in seq) for seq in wrong))


# ------------------------------------------------------------------------------------------ sites


class LocalSites:
    """The local sites a suite runs on, one server each, with logins for tasks that need them.

    `start()` serves each site on an ephemeral port; `site_urls` maps WebArena's site names to them;
    `reset(sites)` restores pristine data (tasks made by `task()` do this themselves when set up);
    `stop()` ends the servers. Give each parallel worker its own LocalSites: state is per server."""

    def __init__(self, sites: Iterable[str] = ("shop", "forum", "gitlab"), cache_dir: Path | None = None) -> None:
        self.names = [_local_name(site) for site in sites]
        self.servers: dict[str, SiteServer] = {name: SiteServer(name, cache_dir=cache_dir) for name in self.names}
        self.auth_dir: Path | None = None

    @classmethod
    def for_tasks(cls, configs: Iterable[TaskConfig], cache_dir: Path | None = None) -> LocalSites:
        """Sites for just the sites these tasks use (not started yet)."""
        used = {_local_name(site) for config in configs for site in config.sites}
        return cls([name for name in WEBARENA_NAME_OF if name in used], cache_dir=cache_dir)

    def start(self) -> LocalSites:
        if self.auth_dir is not None:
            return self
        # Each server seeds (first time only) and boots in its own process: start them side by side.
        with ThreadPoolExecutor(max_workers=len(self.servers) or 1) as pool:
            futures = [pool.submit(server.start) for server in self.servers.values()]
            errors = [error for future in futures if (error := future.exception()) is not None]
        if errors:
            self.stop()
            raise errors[0]
        self.auth_dir = Path(tempfile.mkdtemp(prefix="forethought-auth-"))
        return self

    @property
    def site_urls(self) -> dict[str, str]:
        """WebArena site name -> base URL, e.g. {"shopping": "http://127.0.0.1:41234", ...}."""
        return {WEBARENA_NAME_OF[name]: server.url for name, server in self.servers.items()}

    def server(self, site: str) -> SiteServer:
        name = _local_name(site)
        if name not in self.servers:
            raise ValueError(f"site {site!r} is not served here; these sites are: {', '.join(self.names)}")
        return self.servers[name]

    def reset(self, sites: Iterable[str] | None = None) -> None:
        """Pristine data for the given sites (WebArena or local names), or for all of them."""
        for site in (self.names if sites is None else sites):
            self.server(site).reset()

    async def ensure_storage_state(self, config: TaskConfig, browser: Any) -> None:
        """Write the storage-state file the config names (./.auth/<site>.<username>.json) into
        `auth_dir`, by signing in once through the site; later tasks reuse it (the sites' session
        cookies survive resets and work on every server of the site)."""
        if not config.storage_state or Path(config.storage_state).is_absolute():
            return
        if self.auth_dir is None:
            raise RuntimeError("LocalSites.start() has not been called")
        target = self.auth_dir / config.storage_state
        if target.is_file():
            return
        try:
            site, username = parse_storage_state_path(config.storage_state)
        except TaskConfigError as exc:
            raise TaskConfigError(f"task {config.task_id}: {exc}") from None
        known = [user for user, _password, _role in site_accounts(site)]
        if username not in known:
            raise TaskConfigError(f"task {config.task_id}: storage_state {config.storage_state!r} names no account of "
                                  f"{site}; accounts: {', '.join(known)}")
        if browser is None:
            raise RuntimeError("signing in for a storage state needs a Browser (context.browser is None)")
        state = await login_storage_state(browser, site, self.server(site).url, username)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(state), encoding="utf-8")

    def task(self, config: TaskConfig, **options: Any) -> LocalTask:
        """The config as a runnable task on these sites (judge=..., helpers=... pass through)."""
        options.setdefault("wait_seconds", 0.0)  # server-rendered pages are complete once loaded
        return LocalTask(config, auth_dir=self.auth_dir, sites=self, **options)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        if self.auth_dir is not None:
            shutil.rmtree(self.auth_dir, ignore_errors=True)
            self.auth_dir = None

    def __enter__(self) -> LocalSites:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _local_name(site: str) -> str:
    name = LOCAL_SITE_FOR.get(site, site)
    if name not in WEBARENA_NAME_OF:
        known = ", ".join(f"{local} ({webarena})" for webarena, local in LOCAL_SITE_FOR.items())
        raise ValueError(f"unknown site {site!r}; the local sites are: {known}")
    return name


@dataclass
class LocalTask(WebArenaTask):
    """A WebArena task on LocalSites: setting it up first resets the sites it uses (so no task sees
    another's changes) and signs in for its storage state."""

    sites: LocalSites | None = None

    async def setup(self, context: Any, page: Any) -> str:
        if self.sites is None:
            raise RuntimeError(f"task {self.id}: LocalTask needs sites=LocalSites(...); use LocalSites.task(config)")
        await self.reset_state()
        await self.sites.ensure_storage_state(self.config, context.browser)
        return await super().setup(context, page)

    async def reset_state(self) -> bool:
        """Pristine data on the sites this task uses (all of them when its config names none)."""
        if self.sites is None:
            return False
        self.sites.reset(self.config.sites or None)
        return True
