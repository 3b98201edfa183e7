"""The trace format: one JSON event a line in runs/<run-id>/<task-id>/trace.jsonl, read back strictly.

Events, in the order a run writes them (every event has "type"; the first one also "schema_version"):

  task         task spec (enough to rebuild the task), start URLs as resolved, planner config,
               model specs per role (never keys), run id, time
  start        the goal, once the task has been set up
  observation  index (0 = after reset, i = after the i-th action), url, title, tabs, focused id,
               last action error, the element tree (or `elements_from`: the index of an earlier
               observation with the identical tree), its fingerprint, and the screenshot file
  prompt       hash + the full chat messages, written once per distinct prompt
  llm_call     step, role, model, prompt hash, answers, usage (tokens, latency, cost), n, schema title
  step         a StepRecord (candidates, reasons, imagined outcomes, scores, choice, execution error,
               surprise, reward, stop reason) plus `before`/`after` observation indexes
  resume       a killed run goes on (`forethought run --resume`): the number of finished steps
               replayed in a fresh browser, and any replayed action that failed; the events of the
               step that was cut short were dropped, and that step is done again
  end          RunResult: stop reason, answer, reward, steps, seconds, usage totals, error

An interrupted run has no `end` event (or one with stop_reason "interrupted"); every line written is
complete, so the file stays readable up to the last finished event.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envs.noise import denoise
from envs.types import Element, Observation, Tab

SCHEMA_VERSION = 1
TRACE_FILE = "trace.jsonl"
EVENT_TYPES = ("task", "start", "observation", "prompt", "llm_call", "step", "resume", "end")
PASSWORD_MASK = "********"  # what envs/js/observe.js shows for a filled password field, too


def prompt_hash(messages: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of `messages`: a trace names each prompt by it, and equal prompts hash equal."""
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class TraceError(ValueError):
    """A trace that cannot be read; the message names the file and line."""


# ------------------------------------------------------------------------------- observations


def observation_data(obs: Observation) -> dict[str, Any]:
    """The observation as trace data, without screenshot or HTML; password values masked."""
    return {
        "url": obs.url,
        "title": obs.title,
        "tabs": [asdict(tab) for tab in obs.tabs],
        "focused_id": obs.focused_id,
        "last_action_error": obs.last_action_error,
        "elements": [_element_data(e) for e in obs.elements],
    }


def _element_data(element: Element) -> dict[str, Any]:
    data = asdict(element)
    if "type=password" in element.states and element.value:
        data["value"] = PASSWORD_MASK
    return data


def observation_from_data(data: dict[str, Any]) -> Observation:
    return Observation(
        url=data["url"],
        title=data["title"],
        tabs=[Tab(**tab) for tab in data.get("tabs", [])],
        elements=[Element(**e) for e in data["elements"]],
        focused_id=data.get("focused_id"),
        last_action_error=data.get("last_action_error"),
    )


def tree_hash(elements: list[dict[str, Any]]) -> str:
    """Identity of an element tree as recorded (equal trees are stored once)."""
    return hashlib.sha256(json.dumps(elements, sort_keys=True).encode("utf-8")).hexdigest()


def fingerprint_lines(obs: Observation) -> list[str]:
    """The state as comparable lines: title, tab count, whether the last action failed, then one
    line per element (ids, roles, names, values, states, on/off screen). Clock times, dates and
    durations are blanked, so a ticking timer is not a change; any other text, value, element or
    id that differs is."""
    lines = [f"title: {denoise(obs.title)}", f"tabs: {len(obs.tabs)}",
             f"last action failed: {'yes' if obs.last_action_error else 'no'}"]
    for e in obs.elements:
        line = "  " * e.depth + (f"[{e.id}] " if e.id else "") + e.role
        if e.name:
            line += f" '{denoise(e.name)}'"
        if e.value:
            value = PASSWORD_MASK if "type=password" in e.states else denoise(e.value)
            line += f" value='{value}'"
        line += "".join(f" {s}" for s in e.states) + (" (offscreen)" if e.offscreen else "")
        lines.append(line)
    return lines


def fingerprint(obs: Observation) -> str:
    return hashlib.sha256("\n".join(fingerprint_lines(obs)).encode("utf-8")).hexdigest()[:16]


# -------------------------------------------------------------------------------------- tasks


def task_spec(task: Any) -> dict[str, Any]:
    """What rebuilds `task` in a fresh browser: its kind and arguments (MiniWoB++ seed included)."""
    from envs.miniwob import MiniWoBTask
    from envs.tasks import UrlTask
    from envs.webarena.task import WebArenaTask

    if isinstance(task, UrlTask):
        return {"kind": "url", "id": task.id, "start_url": task.start_url, "goal": task.goal}
    if isinstance(task, MiniWoBTask):
        return {"kind": "miniwob", "id": task.id, "name": task.name, "seed": task.seed,
                "episode_max_ms": task.episode_max_ms}
    if isinstance(task, WebArenaTask):
        config = task.config
        return {"kind": "webarena", "id": task.id, "config": config.raw, "source": config.source,
                "start_urls": list(config.start_urls),
                "auth_dir": str(task.auth_dir) if task.auth_dir is not None else None}
    return {"kind": type(task).__name__, "id": task.id}


def build_task(spec: dict[str, Any]) -> Any:
    """The task a trace's spec describes, ready for BrowserEnv.reset()."""
    kind = spec.get("kind")
    if kind == "url":
        from envs.tasks import UrlTask

        return UrlTask(id=spec["id"], start_url=spec["start_url"], goal=spec["goal"])
    if kind == "miniwob":
        from envs.miniwob import MiniWoBTask

        return MiniWoBTask(spec["name"], seed=spec["seed"], episode_max_ms=spec["episode_max_ms"])
    if kind == "webarena":
        from envs.webarena.config import parse_task
        from envs.webarena.task import WebArenaTask

        config = parse_task(spec["config"], source=spec.get("source", ""))
        if config.unresolved_placeholders():
            raise TraceError(
                f"task {spec['id']} needs its site URLs (recorded start: {', '.join(spec['start_urls'])}); "
                f"{config.unresolved_placeholders()[0]} is not set: "
                "export the site URL variables as when it was recorded"
            )
        return WebArenaTask(config, auth_dir=spec.get("auth_dir"))
    raise TraceError(f"cannot rebuild a task of kind {kind!r} (task {spec.get('id')}); "
                     "replay knows url, miniwob and webarena tasks")


def start_urls(spec: dict[str, Any]) -> list[str]:
    """The task's start URL(s), resolved on this machine (file:// paths depend on where it is installed)."""
    kind = spec.get("kind")
    if kind == "url":
        from envs.tasks import START_URL_SEPARATOR, resolve_url

        return [resolve_url(u.strip()) for u in spec["start_url"].split(START_URL_SEPARATOR)]
    if kind == "miniwob":
        from envs.miniwob import miniwob_html_dir

        return [(miniwob_html_dir() / f"{spec['name']}.html").as_uri()]
    if kind == "webarena":
        return list(spec["start_urls"])
    return []


def path_map(task_event: dict[str, Any]) -> list[tuple[str, str]]:
    """(recorded prefix, prefix here) pairs for file:// start pages that live elsewhere on this machine,
    so a trace recorded in another checkout still compares and replays."""
    pairs = []
    for recorded, here in zip(task_event.get("start_urls", []), start_urls(task_event["task"])):
        if recorded.startswith("file://") and here.startswith("file://"):
            old, new = recorded.rsplit("/", 1)[0] + "/", here.rsplit("/", 1)[0] + "/"
            if old != new and (old, new) not in pairs:
                pairs.append((old, new))
    return pairs


def map_text(text: str, pairs: list[tuple[str, str]], reverse: bool = False) -> str:
    for old, new in pairs:
        text = text.replace(new, old) if reverse else text.replace(old, new)
    return text


# -------------------------------------------------------------------------------------- reading


@dataclass
class Trace:
    """A trace read back: the events, and what replay, reports and evaluation look up in them."""

    dir: Path
    events: list[dict[str, Any]]
    task: dict[str, Any] = field(default_factory=dict)  # the `task` event
    goal: str = ""
    observations: list[dict[str, Any]] = field(default_factory=list)  # index -> event, elements resolved
    prompts: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # hash -> messages
    calls: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None

    @property
    def task_id(self) -> str:
        return str(self.task["task"]["id"])

    def observation(self, index: int) -> Observation:
        return observation_from_data(self.observations[index])

    def executed_steps(self) -> list[dict[str, Any]]:
        """The steps whose action ran (a choice and an observation after it), in order."""
        return [s for s in self.steps if s.get("choice") and s.get("after") is not None]


def read_trace(path: str | Path) -> Trace:
    """Read a task directory's trace.jsonl (or the file itself). Raises TraceError naming the line
    of a corrupted or cut-off file."""
    path = Path(path)
    file = path / TRACE_FILE if path.is_dir() else path
    if not file.is_file():
        raise TraceError(f"no trace at {file}: pass a task directory holding {TRACE_FILE} (runs/<run-id>/<task-id>)")
    text = file.read_text(encoding="utf-8")
    trace = Trace(dir=file.parent, events=[])
    lines = text.split("\n")
    ends_cut = not text.endswith("\n") and text != ""
    for number, line in enumerate(lines, 1):
        if line == "" and number == len(lines):
            break
        try:
            event = json.loads(line)
        except ValueError as exc:
            last = ends_cut and number == len(lines)
            cut = " (the last line is cut off: the run was killed mid-write)" if last else ""
            raise TraceError(f"{file}, line {number}: not a JSON event{cut}: {exc}. "
                             f"Remove that line (and any after it) to read the events before it") from None
        _add_event(trace, event, file, number)
    if not trace.task:
        raise TraceError(f"{file} is empty: the run did not get as far as recording its task")
    return trace


def _add_event(trace: Trace, event: Any, file: Path, number: int) -> None:
    where = f"{file}, line {number}"
    if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
        kind = event.get("type") if isinstance(event, dict) else type(event).__name__
        raise TraceError(f"{where}: not a trace event (type {kind!r}; expected one of {', '.join(EVENT_TYPES)})")
    kind = event["type"]
    if number == 1:
        if kind != "task":
            raise TraceError(f"{where}: a trace starts with a 'task' event, found {kind!r}")
        version = event.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise TraceError(f"{where}: trace schema version {version!r}; this forethought reads versions up to "
                             f"{SCHEMA_VERSION} — upgrade forethought to read it")
    elif kind == "task":
        raise TraceError(f"{where}: a second 'task' event (one trace holds one task)")
    try:
        if kind == "task":
            trace.task = event
            _require(event, "task", "start_urls")
        elif kind == "start":
            trace.goal = event["goal"]
        elif kind == "observation":
            if event["index"] != len(trace.observations):
                raise TraceError(f"{where}: observation {event['index']} out of order "
                                 f"(expected {len(trace.observations)})")
            if "elements_from" in event:
                event = {**event, "elements": trace.observations[event["elements_from"]]["elements"]}
            _require(event, "url", "elements")
            trace.observations.append(event)
        elif kind == "prompt":
            trace.prompts[event["hash"]] = event["messages"]
        elif kind == "llm_call":
            _require(event, "role", "prompt_hash", "answers")
            if event["prompt_hash"] not in trace.prompts:
                raise TraceError(f"{where}: call refers to prompt {event['prompt_hash'][:12]}, "
                                 "which no earlier line holds")
            trace.calls.append(event)
        elif kind == "step":
            for name in ("before", "after"):
                index = event.get(name)
                if index is not None and not 0 <= index < len(trace.observations):
                    raise TraceError(f"{where}: step refers to observation {index}, which no earlier line holds")
            trace.steps.append(event)
        elif kind == "end":
            trace.end = event
    except (KeyError, IndexError, TypeError) as exc:
        raise TraceError(f"{where}: malformed {kind!r} event ({type(exc).__name__}: {exc})") from None


def _require(event: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in event:
            raise KeyError(name)
