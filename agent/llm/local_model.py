"""The local model: a GGUF file served by llama.cpp's OpenAI-compatible server (the prebuilt
`xllamacpp` wheel) on 127.0.0.1, so Forethought runs with no API key and no network.

Which file: a catalogue model (`--model local` for the run default, `--model local:NAME`), fetched
and checked into the cache by agent/llm/model_store.py, or any GGUF file (`--model gguf:PATH`). One
server per model file per process, shared by all roles, stopped when the process exits (and by itself
when its parent dies: it watches its stdin).
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import importlib.util
import json
import logging
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
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

# default_model is imported from here by bench/local_model.py, and LocalModelError by callers of the server.
from agent.llm.model_store import LocalModelError, default_model
from agent.llm.openai_client import EXTRA_BODY
from agent.llm.protocol import LLM, Completion, Role
from world_model.messages import Message

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = ["LocalModelError", "default_model", "ServerSettings", "LocalServer", "shared_server", "stop_servers",
           "N_CTX", "PARALLEL", "MAX_TOKENS", "REQUEST_TIMEOUT_S"]

# Server settings for a small CPU machine. Several slots in one unified KV cache: a step's K
# simulations (then its K verdicts) decode as one batch, which where decoding is memory-bound costs
# little more than one answer (on 2 cores it is compute-bound: 3 side by side took 2.9x one). Each
# slot starts from a copy of the page prefix (SlotSharing): the prefix is computed once per page.
N_CTX = 8192  # per slot; SmolLM2's training context (Qwen2.5-Coder: 32768); a 4000-token page, prompt, answer fit
PARALLEL = 4  # slots: K=3 candidates and one more (adaptive's votes, a policy call overlapping the verdicts)
MAX_TOKENS = 320  # per answer, unless configured: a tiny model can ramble inside a JSON string
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 900.0  # a cold 4000-token prompt on a busy 2-core machine can take minutes
SHARED_SLOT_FILE = "shared-prefix.bin"  # a slot's cache on its way to the others (in the server's own temp dir)


@dataclass(frozen=True)
class ServerSettings:
    n_ctx: int = N_CTX  # per slot
    parallel: int = PARALLEL
    threads: int = 0  # decoding; 0: $FORETHOUGHT_LOCAL_THREADS, else all cores
    batch_threads: int = 0  # prompt processing (compute-bound, unlike decoding); 0: as `threads`
    n_batch: int = 2048  # prompt tokens per decode call
    n_ubatch: int = 512  # prompt tokens per compute pass
    flash_attn: Literal["auto", "on", "off"] = "auto"
    kv_type: Literal["f16", "q8_0"] = "f16"  # q8_0 halves the KV cache's memory traffic
    prompt_cache_mib: int = 2048  # host memory for prompts a slot had to give up

    def to_json(self) -> str:
        return json.dumps(asdict(self))


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
        command = [sys.executable, "-m", "agent.llm.local_model", "serve", str(self.gguf), "--settings", s.to_json()]
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


class SlotSharing:
    """Gives each call of a burst its own llama.cpp slot, every one starting from the page prefix.

    The calls of a step (K simulations, then K verdicts) share their first part (system text, task,
    page) with the step's earlier calls and differ only at the end. Run side by side in K slots they
    decode as one batch (nearly free where decoding is memory-bound; on 2 CPU cores three answers
    side by side took 2.9x one), but each slot would compute the shared part again (a slot reuses
    only its own cache). So the burst's first call goes to the slot the last call used (`home`); the part all
    the burst's prompts share (the page, then the role's instructions, when the prompt puts what
    differs last) is computed there once; and that slot's cache is copied into the slots of the others
    (llama.cpp's slot save and restore) before they start. Calls that come while a burst runs join no
    burst: the server places them itself."""

    def __init__(self, server_url: str, parallel: int) -> None:
        self.server_url, self.parallel = server_url, parallel  # http://127.0.0.1:PORT
        self.home = 0
        self.busy: set[int] = set()
        self.forming: list[tuple[list[Message], asyncio.Future[int | None]]] | None = None

    async def around(self, messages: list[Message], call: Callable[[], Awaitable[T]]) -> T:
        if self.busy or self.parallel < 2:
            return await call()
        slot_of = asyncio.get_running_loop().create_future()
        if self.forming is None:
            self.forming = []
            asyncio.ensure_future(self._form())
        self.forming.append((messages, slot_of))
        slot = await slot_of
        if slot is None:
            return await call()
        token = EXTRA_BODY.set({"id_slot": slot})
        try:
            return await call()
        finally:
            EXTRA_BODY.reset(token)
            self.busy.discard(slot)

    async def _form(self) -> None:
        """Wait for the burst's other calls to arrive (they start in the same few loop turns), give
        them slots, copy the home slot's cache into the others."""
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.sleep(0.005)
        members, self.forming = self.forming or [], None
        slots = [self.home, *(s for s in range(self.parallel) if s != self.home)][:len(members)]
        self.busy.update(slots)
        try:
            if len(slots) > 1:
                await self._share([messages for messages, _ in members], self.home, slots[1:])
        except Exception:  # noqa: BLE001 -- sharing is an optimisation: unshared slots only cost time
            log.warning("could not share llama.cpp slot %d with %s; those calls recompute the page", self.home,
                        slots[1:], exc_info=True)
        for index, (_, slot_of) in enumerate(members):
            slot_of.set_result(slots[index] if index < len(slots) else None)

    async def _share(self, prompts: list[list[Message]], source: int, targets: list[int]) -> None:
        """Compute the prompts' common beginning in slot `source`, then copy its cache to `targets`."""
        import httpx  # the openai SDK's HTTP client

        async with httpx.AsyncClient(base_url=self.server_url, timeout=REQUEST_TIMEOUT_S) as client:
            texts = []
            for messages in prompts:  # as the chat template writes them (llama.cpp's own rendering)
                rendered = await client.post("/apply-template", json={"messages": messages})
                rendered.raise_for_status()
                texts.append(str(rendered.json()["prompt"]))
            shared = os.path.commonprefix(texts)
            if shared:
                computed = await client.post("/completion", json={"prompt": shared, "n_predict": 1, "id_slot": source,
                                                                 "cache_prompt": True, "temperature": 0})
                computed.raise_for_status()
            saved = await client.post(f"/slots/{source}?action=save", json={"filename": SHARED_SLOT_FILE})
            saved.raise_for_status()
            for target in targets:
                restored = await client.post(f"/slots/{target}?action=restore", json={"filename": SHARED_SLOT_FILE})
                restored.raise_for_status()


class SlotSharingLLM:
    """An LLM client of the local server whose calls go through its SlotSharing."""

    def __init__(self, llm: LLM, sharing: SlotSharing) -> None:
        self.llm, self.sharing = llm, sharing

    async def complete(self, role: Role, messages: list[Message], *, n: int = 1,
                       json_schema: dict[str, Any] | None = None, temperature: float | None = None,
                       ) -> list[Completion]:
        return await self.sharing.around(messages, lambda: self.llm.complete(
            role, messages, n=n, json_schema=json_schema, temperature=temperature))

    async def aclose(self) -> None:
        close = getattr(self.llm, "aclose", None)
        if close is not None:
            await close()


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

    settings = ServerSettings(**json.loads(args.settings))
    params = xllamacpp.CommonParams()
    params.model.path = args.gguf
    params.n_parallel = settings.parallel
    params.n_ctx = settings.n_ctx * settings.parallel  # one pool for all slots
    params.kv_unified = True  # one pool of KV cells: a slot uses what its prompt needs
    params.cache_idle_slots = False  # idle slots keep their cache in place, where SlotSharing copies it from
    params.cache_ram_mib = settings.prompt_cache_mib
    slot_dir = tempfile.mkdtemp(prefix="forethought-slots-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    params.slot_save_path = slot_dir + os.sep
    params.cache_prompt = True
    params.n_batch, params.n_ubatch = settings.n_batch, settings.n_ubatch
    flash = {"auto": "AUTO", "on": "ENABLED", "off": "DISABLED"}[settings.flash_attn]
    params.flash_attn_type = getattr(xllamacpp.llama_flash_attn_type, f"LLAMA_FLASH_ATTN_TYPE_{flash}")
    params.cache_type_k = params.cache_type_v = getattr(xllamacpp.ggml_type, f"GGML_TYPE_{settings.kv_type.upper()}")
    # Idle, 2 cores (bench/local_model.py --sweep, 1.5B): prompts at 27 tok/s on one thread, 42-48 on
    # two; decoding 9 tok/s on one, 16 on two. On a machine kept busy by other work two threads can be
    # several times slower than one (they meet at a barrier after every op, and one gets descheduled):
    # FORETHOUGHT_LOCAL_THREADS=1 there.
    threads = settings.threads or int(os.environ.get("FORETHOUGHT_LOCAL_THREADS") or 0) or (os.cpu_count() or 1)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = settings.batch_threads or threads
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.poll = 0  # sleep, not spin, between ops: the machine is shared with a browser and the agent
    params.verbosity = 0
    params.endpoint_metrics = True  # /metrics: token counts and times, read by bench/local_model.py
    server = xllamacpp.Server(params)  # loads the model, then listens on 127.0.0.1 at a free port
    print(json.dumps({"address": server.listening_address}), flush=True)
    try:
        sys.stdin.read()  # returns when the parent closes our stdin or dies
    finally:
        del server
        shutil.rmtree(slot_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.llm.local_model")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a GGUF file (used by Forethought itself)")
    serve.add_argument("gguf")
    serve.add_argument("--settings", default=ServerSettings().to_json(), help="ServerSettings as JSON")
    args = parser.parse_args(argv)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
