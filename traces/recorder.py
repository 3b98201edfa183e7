"""Writing a run's trace as it happens: one flushed JSON line per event, screenshots, result.json.

Secrets: text typed into a password field (a fill on an element whose states hold `type=password`)
and any secrets the caller names (the task's secrets, API keys, base URL passwords) are replaced by
PASSWORD_MASK in everything written here, in every form a file can hold them (percent-, JSON-, HTML-
escaped, base64: envs/secrets.py Masker), and so are the credentials of any URL (`user:password@`). A
secret found late (the goal mentioned it before the agent typed it) makes the recorder rewrite the
lines it already wrote, so the run directory never keeps it.

A picture in a prompt (--vision: an image part holding a PNG data URL) is written once as a file,
steps/NNN-marks.png after the observation NNN it shows (its set-of-marks screenshot), and the prompt
event names that file instead: `{"type": "image_url", "image_url": {"file": "steps/000-marks.png"}}`.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from envs.actions import ActionError, parse_action
from envs.secrets import Masker, is_reference
from envs.types import PASSWORD_MASK, Observation
from traces.schema import (
    SCHEMA_VERSION,
    TRACE_FILE,
    Trace,
    fingerprint,
    observation_data,
    prompt_hash,
    task_spec,
    tree_hash,
)

log = logging.getLogger(__name__)
STEPS_FILE = "steps.jsonl"  # the planner's own per-step log (agent tests read it); same records as `step` events
RESULT_FILE = "result.json"
SCREENSHOT_DIR = "steps"
DATA_URL = re.compile(r"data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+)")


def plain_data(value: Any) -> Any:
    """Settings (dataclasses, pydantic models, paths) as JSON-ready data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class TraceRecorder:
    """Records one task's run into `task_dir`. Call `close()` (or use it as a context manager)."""

    def __init__(self, task_dir: str | Path, *, screenshots: bool = True, secrets: Iterable[str] = (),
                 resumed: Trace | None = None) -> None:
        """`resumed`: the trace of a killed run, cut back to its last finished step (traces/resume.py);
        the recording goes on after it, in the same files."""
        self.dir = Path(task_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.screenshots = screenshots
        self._masker = Masker(url_mask=PASSWORD_MASK)
        mode = "a" if resumed else "w"
        self._files = {TRACE_FILE: open(self.dir / TRACE_FILE, mode, encoding="utf-8"),
                       STEPS_FILE: open(self.dir / STEPS_FILE, mode, encoding="utf-8")}
        self._prompts_written: set[str] = set(resumed.prompts) if resumed else set()
        self._trees: dict[str, int] = {}  # tree hash -> first observation index holding it
        for event in resumed.observations if resumed else ():
            self._trees.setdefault(tree_hash(event["elements"]), event["index"])
        self.observations = len(resumed.observations) if resumed else 0
        self._pictures: dict[str, str] = {}  # sha256 of a prompt's picture -> the file it was written to
        self.calls_written = len(resumed.calls) if resumed else 0
        self.ended = False
        for secret in secrets:
            self.add_secret(secret)

    # ------------------------------------------------------------------------------ secrets

    def add_secret(self, secret: str) -> None:
        """Mask `secret` from now on, and in what is already written."""
        if secret == PASSWORD_MASK or not self._masker.add(secret, PASSWORD_MASK):
            return
        if any(f.tell() for f in self._files.values()):
            self._rewrite_written()

    def note_password_fills(self, actions: Iterable[str], obs: Observation) -> None:
        """Every `fill` among `actions` aimed at a password field of `obs` types a secret."""
        for text in actions:
            try:
                action = parse_action(text)
            except ActionError:
                continue
            if action.name != "fill":
                continue
            target, value = obs.element(action.args[0]), action.args[1]  # fill(id, value[, press_enter])
            # A `{{NAME}}` secret reference is a name, not a value: it stays readable in the trace.
            if (target is not None and "type=password" in target.states and isinstance(value, str) and value
                    and not is_reference(value)):
                self.add_secret(value)

    def scrub(self, data: Any) -> Any:
        """`data` (strings, lists, dicts) with every secret and URL credential masked."""
        return self._masker.mask_data(data)

    def _rewrite_written(self) -> None:
        # Masking changes prompts, so their hashes change too; calls follow their prompt's new hash.
        for name, handle in self._files.items():
            handle.flush()
            path = self.dir / name
            new_hashes: dict[str, str] = {}
            lines = []
            for line in path.read_text(encoding="utf-8").splitlines():
                event = self.scrub(json.loads(line))
                if event.get("type") == "prompt":
                    new_hashes[event["hash"]] = prompt_hash(event["messages"])
                    event["hash"] = new_hashes[event["hash"]]
                elif event.get("type") == "llm_call":
                    event["prompt_hash"] = new_hashes.get(event["prompt_hash"], event["prompt_hash"])
                lines.append(json.dumps(event, ensure_ascii=False) + "\n")
            if new_hashes:
                self._prompts_written = {new_hashes.get(h, h) for h in self._prompts_written}
            handle.close()
            temporary = path.with_suffix(".rewrite")
            temporary.write_text("".join(lines), encoding="utf-8")
            os.replace(temporary, path)
            self._files[name] = open(path, "a", encoding="utf-8")

    # ------------------------------------------------------------------------------- events

    def _write(self, event: dict[str, Any], file: str = TRACE_FILE) -> None:
        handle = self._files[file]
        handle.write(json.dumps(self.scrub(event), ensure_ascii=False) + "\n")
        handle.flush()  # an interrupted run keeps every finished event

    def task(self, task: Any, config: dict[str, Any], models: dict[str, Any], run_id: str,
             start_urls: list[str]) -> None:
        self._write({"type": "task", "schema_version": SCHEMA_VERSION, "run_id": run_id, "task": task_spec(task),
                     "start_urls": start_urls, "config": config, "models": models, "started_at": time.time()})

    def start(self, goal: str) -> None:
        self._write({"type": "start", "goal": goal})

    def resume(self, steps: int, replay_errors: list[str]) -> None:
        """The run goes on after a kill: its first `steps` actions were replayed in a fresh browser."""
        self._write({"type": "resume", "steps": steps, "replay_errors": replay_errors, "at": time.time()})

    async def observation(self, obs: Observation,
                          screenshot: Callable[[str], Awaitable[dict[str, list[int]] | None]] | None = None) -> int:
        """Record the state the browser is in now, with `screenshot(path)` taking its picture (and saying
        where the elements are on it); returns its index."""
        index = self.observations
        self.observations += 1
        data = observation_data(obs)
        event: dict[str, Any] = {"type": "observation", "index": index, "fingerprint": fingerprint(obs)}
        key = tree_hash(data["elements"])
        if key in self._trees:
            data.pop("elements")
            event["elements_from"] = self._trees[key]
        else:
            self._trees[key] = index
        event.update(data)
        if self.screenshots and screenshot is not None:
            name = f"{SCREENSHOT_DIR}/{index:03d}.png"
            try:
                (self.dir / SCREENSHOT_DIR).mkdir(exist_ok=True)
                boxes = await screenshot(str(self.dir / name))
                event["screenshot"] = name
                if boxes:  # only the observation's own elements: an id left on the page from before is not one
                    ids = obs.ids()
                    event["boxes"] = {element_id: box for element_id, box in boxes.items() if element_id in ids}
            except Exception as exc:  # a crashed or closed tab: the trace says why there is no picture
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                event["screenshot_error"] = f"{type(exc).__name__}: {first_line}"
                log.warning("no screenshot for observation %d: %s", index, event["screenshot_error"])
        self._write(event)
        return index

    def calls(self, calls: list[dict[str, Any]], step: int) -> None:
        """Write calls not written yet (each distinct prompt once, before its first call); `calls_written`
        counts those already in the trace. A call is plain data: role, model, messages, answers, n,
        json_schema (its title), usage, started_at."""
        for call in calls:
            messages = self.scrub(self._pictures_by_file(call["messages"]))
            key = prompt_hash(messages)
            if key not in self._prompts_written:
                self._write({"type": "prompt", "hash": key, "messages": messages})
                self._prompts_written.add(key)
            self._write({"type": "llm_call", "step": step, "role": call["role"], "model": call["model"],
                         "prompt_hash": key, "answers": call["answers"], "n": call.get("n", 1),
                         "json_schema": call.get("json_schema"), "usage": call["usage"],
                         "started_at": call.get("started_at", 0.0)}
                        | ({"answer_probs": call["answer_probs"]} if call.get("answer_probs") else {}))
        self.calls_written += len(calls)

    def _pictures_by_file(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`messages` with each picture's data URL replaced by the file holding it, written if new."""
        return [{**m, "content": [self._picture_file(part) for part in m["content"]]}
                if isinstance(m.get("content"), list) else m for m in messages]

    def _picture_file(self, part: Any) -> Any:
        url = part.get("image_url", {}).get("url", "") if isinstance(part, dict) else ""
        found = DATA_URL.fullmatch(url) if isinstance(url, str) else None
        if found is None:
            return part
        png = base64.b64decode(found["data"])
        digest = hashlib.sha256(png).hexdigest()
        if digest not in self._pictures:
            name = f"{SCREENSHOT_DIR}/{max(self.observations - 1, 0):03d}-marks.png"  # the page its step is on
            if (self.dir / name).exists() and (self.dir / name).read_bytes() != png:
                name = name.replace(".png", f"-{digest[:8]}.png")  # another picture of that page
            (self.dir / SCREENSHOT_DIR).mkdir(exist_ok=True)
            (self.dir / name).write_bytes(png)
            self._pictures[digest] = name
        return {**part, "image_url": {"file": self._pictures[digest]}}

    def step(self, record: dict[str, Any], before: int, after: int | None) -> None:
        self._write(record, STEPS_FILE)
        event = {"type": "step", **record, "before": before, "after": after}
        event.pop("observation", None)  # the summary: the observation events hold the full states
        self._write(event)

    def end(self, result: dict[str, Any]) -> None:
        self._write({"type": "end", **result})
        self.ended = True

    def write_result(self, result: dict[str, Any]) -> None:
        (self.dir / RESULT_FILE).write_text(json.dumps(self.scrub(result), indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")

    def scrub_files(self, paths: Iterable[str | Path]) -> None:
        """Mask secrets in a network.har (JSON: its base64 bodies decoded first) or Playwright trace.zip
        written next to the trace."""
        for path in map(Path, paths):
            if not path.is_file():
                continue
            if path.suffix == ".zip":
                temporary = path.with_suffix(".rewrite")
                with zipfile.ZipFile(path) as source, zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target:
                    for item in source.infolist():
                        target.writestr(item, self._masker.mask_bytes(source.read(item)))
                os.replace(temporary, path)
            elif path.suffix == ".har":
                path.write_bytes(self._masker.mask_json_document(path.read_bytes()))
            else:
                path.write_bytes(self._masker.mask_bytes(path.read_bytes()))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
