"""The local model: a GGUF file served by llama.cpp's OpenAI-compatible server (the prebuilt
`xllamacpp` wheel) on 127.0.0.1, so Forethought runs with no API key and no network.

Which file: a catalogue model (`--model local` for the run default, `--model local:NAME`), fetched
and checked into the cache by agent/llm/model_store.py, or any GGUF file (`--model gguf:PATH`). One
server per model file per process, shared by all roles, stopped when the process exits (and by itself
when its parent dies: it watches its stdin).
"""
from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# default_model is imported from here by bench/local_model.py, and LocalModelError by callers of the server.
from agent.llm.model_store import LocalModelError, default_model

__all__ = ["LocalModelError", "default_model", "ServerSettings", "LocalServer", "shared_server", "stop_servers",
           "N_CTX", "PARALLEL", "MAX_TOKENS", "REQUEST_TIMEOUT_S"]

# Server settings for a small CPU machine. One slot: the K simulation calls of a step queue up and
# each after the first reuses the cached prompt prefix (system text + task + page), where parallel
# slots would each compute that prefix from scratch on the same cores.
N_CTX = 8192  # SmolLM2's training context (Qwen2.5-Coder's is 32768): a ~4000-token page, the prompt and the answer fit
PARALLEL = 1
MAX_TOKENS = 320  # per answer, unless configured: a tiny model can ramble inside a JSON string
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 900.0  # a cold 4000-token prompt on a busy 2-core machine can take minutes


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
