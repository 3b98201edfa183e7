"""`forethought eval --backend ray`: the same workers as the local backend, as Ray actors.

Each actor is one `Worker` (its own browser and, for the local suite, its own copies of the local
sites, reset before every task) in its own process, on whichever node of the cluster Ray places it. It
runs a task in a scratch folder of its node and sends the task's files back with its record; the driver
writes them into `--out`, so a run directory looks the same whichever backend made it. A task resumed
from an earlier run gets its earlier files (the planner's checkpoint) sent along.

Failures the local backend does not have: a task whose actor does not answer within its time limit
(the task's own limit plus the closing grace, plus SHIPPING_GRACE_S) is cancelled by killing the actor;
an actor that dies (its process killed, its node lost) loses only the task it was running, which is run
once more on a new actor and, if that fails too, recorded as an error.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.evaluation.runner import CLOSING_GRACE_S, EvalOptions, Worker, error_record, stop_on_config_error
from agent.evaluation.suites import EvalError, SuiteTask
from agent.llm.settings import ConfigError
from envs.types import first_line

SHIPPING_GRACE_S = 60.0  # beyond a task's own limit: its files' trip back, an actor's start
ATTEMPTS = 2  # a task whose actor died is run once more
RAY_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # of a Ray instance started here: task files are small
Files = dict[str, bytes]


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EvalError("--backend ray needs Ray: pip install 'forethought[ray]' (on every node)") from None
    return ray


class RemoteWorker:
    """What runs inside a Ray actor: a Worker writing into a scratch folder of its own node."""

    def __init__(self, index: int, options: EvalOptions, sites: tuple[str, ...]) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="forethought-ray-"))
        self.worker = Worker(index, replace(options, out=self.scratch, progress=None), sites)

    async def start(self) -> int:
        await self.worker.start()
        return os.getpid()

    async def run(self, strategy: str, task: SuiteTask, earlier: Files) -> tuple[dict[str, Any], Files]:
        task_dir = self.scratch / strategy / task.id
        shutil.rmtree(task_dir, ignore_errors=True)
        write_files(task_dir, earlier)
        try:
            return await self.worker.run(strategy, task), read_files(task_dir)
        finally:
            shutil.rmtree(task_dir, ignore_errors=True)

    async def close(self) -> None:
        try:
            await self.worker.close()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


def read_files(folder: Path) -> Files:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_files(folder: Path, files: Files) -> None:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def init_ray(ray: Any, address: str | None = None, cpus: int = 1) -> None:
    """Join the cluster at `address`, else start a Ray instance of `cpus` CPUs here.

    Ray starts a new process for every actor (never one of its idle workers), so preloading the agent in
    its workers (a worker_process_setup_hook) bought nothing: measured, it made each actor's start about
    1 s slower."""
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **options)
    else:
        # Ray runs its workers at niceness 15: beside anything else on this machine (the driver, the
        # local model) they would get a sliver of the CPU, where the local backend's workers get a fair share.
        ray.init(num_cpus=cpus, object_store_memory=RAY_OBJECT_STORE_BYTES, _system_config={"worker_niceness": 0},
                 **options)


def connect(ray: Any, options: EvalOptions) -> bool:
    """Join the cluster at --ray-address (or $RAY_ADDRESS), else start a Ray instance of --workers CPUs
    on this machine; True when this call started it (and so should shut it down)."""
    if ray.is_initialized():
        return False
    address = options.ray_address or os.environ.get("RAY_ADDRESS") or None
    try:
        init_ray(ray, address, options.workers)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise EvalError(f"cannot start or join {where}: {first_line(exc)}") from None
    return True


async def run_jobs(jobs: list[tuple[str, SuiteTask]], options: EvalOptions, sites: tuple[str, ...],
                   finished: Callable[[dict[str, Any]], None]) -> None:
    """Run `jobs` on `options.workers` Ray actors; `finished` hears of each record as it comes."""
    ray = import_ray()
    started_here = connect(ray, options)
    actor_class = ray.remote(num_cpus=1)(RemoteWorker)
    queue: asyncio.Queue[tuple[str, SuiteTask, int]] = asyncio.Queue()
    for strategy, task in jobs:
        queue.put_nowait((strategy, task, 1))
    limit = options.task_timeout
    deadline = None if limit is None else limit + CLOSING_GRACE_S + SHIPPING_GRACE_S

    async def new_actor(index: int) -> Any:
        actor = actor_class.remote(index, replace(options, progress=None), sites)
        await actor.start.remote()
        return actor

    stop: list[ConfigError] = []

    async def work(index: int) -> None:
        actor = None
        try:
            while not queue.empty() and not stop:
                strategy, task, attempt = queue.get_nowait()
                task_dir = options.out / strategy / task.id
                earlier = read_files(task_dir) if options.resume and task_dir.is_dir() else {}
                started = time.perf_counter()
                actor = actor or await new_actor(index)
                try:
                    record, files = await asyncio.wait_for(actor.run.remote(strategy, task, earlier), deadline)
                except ConfigError as exc:  # raised in the actor: Ray's error is also the original's class
                    stop.append(getattr(exc, "cause", None) or exc)
                    continue
                except (TimeoutError, ray.exceptions.RayActorError) as exc:
                    ray.kill(actor, no_restart=True)
                    actor = None
                    if isinstance(exc, TimeoutError):
                        reason = f"timed out after {limit:g} s: cancelled on the cluster"
                    elif attempt < ATTEMPTS:
                        queue.put_nowait((strategy, task, attempt + 1))
                        continue
                    else:
                        reason = f"its Ray worker died {ATTEMPTS} times: {first_line(exc)}"
                    finished(error_record(strategy, task, task_dir, reason, time.perf_counter() - started, index))
                    continue
                shutil.rmtree(task_dir, ignore_errors=True)
                write_files(task_dir, files)
                finished(record)
        finally:
            if actor is not None:
                await _close(actor)
                ray.kill(actor, no_restart=True)

    try:
        await asyncio.gather(*(work(i) for i in range(min(options.workers, len(jobs)))))
        stop_on_config_error(stop)
    finally:
        if started_here:
            ray.shutdown()


async def _close(actor: Any) -> None:
    try:
        await actor.close.remote()
    except Exception:
        pass  # a dead actor has nothing left to close
