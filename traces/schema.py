"""The trace format: one JSON event a line in runs/<run-id>/<task-id>/trace.jsonl, read back strictly.

Events, in the order a run writes them (every event has "type"; the first one also "schema_version"):

  task         task spec (enough to rebuild the task), start URLs as resolved, planner config,
               model specs per role (never keys), run id, time
  start        the goal, once the task has been set up
  observation  index (0 = after reset, i = after the i-th action), url, title, tabs, focused id,
               last action error, the element tree (or `elements_from`: the index of an earlier
               observation with the identical tree), its fingerprint, the screenshot file and
               `boxes`: where each element with an id is on it ([x, y, width, height] in its pixels)
  prompt       hash + the full chat messages, written once per distinct prompt
  llm_call     step, role, model, prompt hash, answers, usage (tokens, latency, cost), n, schema title
  step         a StepRecord (candidates, reasons, imagined outcomes, scores, choice, execution error,
               surprise, reward, stop reason) plus `before`/`after` observation indexes
  resume       a killed run goes on (`forethought run --resume`): the number of finished steps
               replayed in a fresh browser, and any replayed action that failed; the events of the
               step that was cut short were dropped, and that step is done again
  end          RunResult: stop reason, answer, reward, steps, seconds, usage totals, error

An interrupted run has no `end` event (or one with stop_reason "interrupted"). Every event is flushed
as one whole line, so a kill can only cut the last one: reading leaves that line out. Each event is
checked against its model below (the fields it must hold, their types), and a line that fails is
named with the field at fault.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from envs.noise import denoise
from envs.types import PASSWORD_MASK, Element, Observation, Tab

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
TRACE_FILE = "trace.jsonl"


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
    """The task a trace's spec describes, ready for BrowserEnv.reset(); TraceError when it cannot be built."""
    try:
        return _build_task(spec)
    except ValueError as exc:  # a MiniWoB++ task this checkout does not have, a bad WebArena config
        if isinstance(exc, TraceError):
            raise
        raise TraceError(f"cannot rebuild task {spec.get('id')} from its trace: {exc}") from None


def _build_task(spec: dict[str, Any]) -> Any:
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


# --------------------------------------------------------------------------------------- events
# What each event must hold to be read back (the recorder writes more; what is not named here is kept
# as written). Types are checked strictly: JSON gives no reason to turn "3" into 3.


class _Data(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _Exact(_Data):
    """Rebuilt field by field (Element(**data), Budget(**data)): nothing else may be in it."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ElementData(_Exact):
    id: str | None
    role: str
    name: str
    depth: int = 0
    value: str | None = None
    states: list[str] = []
    offscreen: bool = False
    tag: str = ""


class TabData(_Exact):
    index: int
    url: str
    title: str
    active: bool


class UrlTaskSpec(_Data):
    kind: Literal["url"]
    id: str
    start_url: str
    goal: str


class MiniWoBTaskSpec(_Data):
    kind: Literal["miniwob"]
    id: str
    name: str
    seed: int
    episode_max_ms: int


class WebArenaTaskSpec(_Data):
    kind: Literal["webarena"]
    id: str
    config: dict[str, Any]
    source: str = ""
    start_urls: list[str]
    auth_dir: str | None = None


class OtherTaskSpec(_Data):
    """A task kind replay cannot rebuild (build_task says so); its trace can still be shown."""

    kind: str
    id: str


_SPEC_TAG = "kind="  # marks a task spec's kind in a ValidationError's location (dropped from messages)
_SPECS = {"url": UrlTaskSpec, "miniwob": MiniWoBTaskSpec, "webarena": WebArenaTaskSpec}


def _spec_kind(data: Any) -> str:
    kind = data.get("kind") if isinstance(data, dict) else None
    return f"{_SPEC_TAG}{kind if kind in _SPECS else 'other'}"


TaskSpec = Annotated[
    Annotated[UrlTaskSpec, Tag(f"{_SPEC_TAG}url")] | Annotated[MiniWoBTaskSpec, Tag(f"{_SPEC_TAG}miniwob")]
    | Annotated[WebArenaTaskSpec, Tag(f"{_SPEC_TAG}webarena")] | Annotated[OtherTaskSpec, Tag(f"{_SPEC_TAG}other")],
    Discriminator(_spec_kind),
]


class BudgetData(_Exact):
    max_tokens: int | None = None
    max_calls: int | None = None
    max_usd: float | None = None


class PlannerConfigData(_Data):
    """What replay rebuilds a PlannerConfig from, and what reports show of it."""

    strategy: str
    k: int = 1
    horizon: int | None = None  # None: the strategy's default depth
    samples: int = 1
    max_steps: int = 20
    observation_tokens: int | None = None
    budget: BudgetData | None = None
    adaptive: dict[str, Any] | None = None


class ModelSpecData(_Data):
    model: str | None = None
    base_url: str | None = None
    seed: int | None = None


class TaskEvent(_Data):
    type: Literal["task"]
    schema_version: int
    run_id: str = ""
    task: TaskSpec
    start_urls: list[str]
    config: PlannerConfigData
    models: dict[str, ModelSpecData] = {}
    started_at: float = 0.0


class StartEvent(_Data):
    type: Literal["start"]
    goal: str


class ObservationEvent(_Data):
    type: Literal["observation"]
    index: int = Field(ge=0)
    fingerprint: str = ""
    url: str
    title: str
    tabs: list[TabData] = []
    focused_id: str | None = None
    last_action_error: str | None = None
    elements: list[ElementData] | None = None
    elements_from: int | None = Field(default=None, ge=0)  # the index of an earlier observation with this tree
    screenshot: str | None = None
    screenshot_error: str | None = None
    boxes: dict[str, list[int]] | None = None  # element id -> [x, y, width, height] on the screenshot

    @model_validator(mode="after")
    def _has_a_tree(self) -> ObservationEvent:
        if (self.elements is None) == (self.elements_from is None):
            raise ValueError("an observation holds either 'elements' or 'elements_from'")
        return self


class PromptEvent(_Data):
    type: Literal["prompt"]
    hash: str
    messages: list[dict[str, Any]]


class UsageData(_Data):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0


class LLMCallEvent(_Data):
    type: Literal["llm_call"]
    step: int
    role: str
    model: str = ""
    prompt_hash: str
    answers: list[str]
    n: int = 1
    json_schema: str | None = None
    usage: UsageData = UsageData()
    started_at: float = 0.0
    answer_probs: list[dict[str, dict[str, float]] | None] | None = None  # per answer, its fixed-value fields' odds


class ScoreData(_Data):
    value: float
    samples: list[float] = []
    reasons: list[str] = []


class ImaginedData(_Data):
    action: str
    prediction: dict[str, Any]
    note: str | None = None


class SurpriseData(_Data):
    score: float = 0.0
    predicted: bool = True
    matched: list[str] = []
    missed: list[str] = []
    unnamed: list[str] = []
    claims: int = 0
    true_claims: int = 0
    changes: int = 0
    named_changes: int = 0


class StepEvent(_Data):
    type: Literal["step"]
    step: int
    candidates: list[str] = []
    reasons: dict[str, str] = {}
    rejected: list[dict[str, Any]] = []
    refined_out: list[str] = []
    imagined: dict[str, list[ImaginedData]] = {}
    scores: dict[str, ScoreData] = {}
    choice: str | None = None
    execution_error: str | None = None
    surprise: SurpriseData | None = None
    reward: float = 0.0
    seconds: float = 0.0
    stop_reason: str | None = None
    overruled: bool = False
    before: int | None = None
    after: int | None = None


class ResumeEvent(_Data):
    type: Literal["resume"]
    steps: int = Field(ge=0)
    replay_errors: list[str] = []
    at: float = 0.0


class EndEvent(_Data):
    type: Literal["end"]
    stop_reason: str
    answer: str | None = None
    reward: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    stop_detail: str | None = None
    error: str | None = None
    usage: dict[str, Any] = {}


EVENT_MODELS: dict[str, type[_Data]] = {
    "task": TaskEvent, "start": StartEvent, "observation": ObservationEvent, "prompt": PromptEvent,
    "llm_call": LLMCallEvent, "step": StepEvent, "resume": ResumeEvent, "end": EndEvent,
}
EVENT_TYPES = tuple(EVENT_MODELS)


def check_event(event: Any, where: str) -> str:
    """The event's type, once `event` holds what its type needs; TraceError naming the field otherwise."""
    kind = event.get("type") if isinstance(event, dict) else None
    if kind not in EVENT_MODELS:
        shown = kind if isinstance(event, dict) else type(event).__name__
        raise TraceError(f"{where}: not a trace event (type {shown!r}; expected one of {', '.join(EVENT_TYPES)})")
    try:
        EVENT_MODELS[kind].model_validate(event)
    except ValidationError as exc:
        raise TraceError(f"{where}: {kind!r} event: {_first_problem(exc)}") from None
    return str(kind)


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    error = errors[0]
    field_path = ".".join(str(part) for part in error["loc"] if not str(part).startswith(_SPEC_TAG))
    text = (f"field {field_path!r}: " if field_path else "") + error["msg"]
    if error["type"] != "missing":
        text += f", got {_shown(error.get('input'))}"
    return text + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else "")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


def complete_lines(file: Path) -> list[str]:
    """The lines of a JSON-lines file the recorder wrote, decoded. A last line without its newline that
    is not whole JSON was cut off by a kill: it is dropped. A byte that is not UTF-8 becomes U+FFFD.
    Each is logged as a warning naming the line."""
    data = file.read_bytes()
    pieces = data.split(b"\n")
    last = pieces.pop()  # b"" when the file ends with its newline
    if last:
        try:
            json.loads(last.decode("utf-8"))
            pieces.append(last)
        except ValueError:  # UnicodeDecodeError too: a kill can cut a character in two
            log.warning("%s, line %d is cut off (the run was killed while writing it): read up to line %d",
                        file, len(pieces) + 1, len(pieces))
    lines = []
    for number, piece in enumerate(pieces, 1):
        try:
            lines.append(piece.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(piece.decode("utf-8", errors="replace"))
            log.warning("%s, line %d: bytes that are not UTF-8 were read as U+FFFD", file, number)
    return lines


def read_trace(path: str | Path) -> Trace:
    """Read a task directory's trace.jsonl (or the file itself). A cut-off last line is left out (a
    kill leaves one); any other line that is not an event as this schema describes it raises a
    TraceError naming the line and the field."""
    path = Path(path)
    file = path / TRACE_FILE if path.is_dir() else path
    if not file.is_file():
        raise TraceError(f"no trace at {file}: pass a task directory holding {TRACE_FILE} (runs/<run-id>/<task-id>)")
    trace = Trace(dir=file.parent, events=[])
    for number, line in enumerate(complete_lines(file), 1):
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise TraceError(f"{file}, line {number}: not a JSON event: {exc}. "
                             f"Remove that line (and any after it) to read the events before it") from None
        _add_event(trace, event, f"{file}, line {number}", number)
    if not trace.task:
        raise TraceError(f"{file} is empty: the run did not get as far as recording its task")
    return trace


def _add_event(trace: Trace, event: Any, where: str, number: int) -> None:
    kind = check_event(event, where)
    if number == 1:
        if kind != "task":
            raise TraceError(f"{where}: a trace starts with a 'task' event, found {kind!r}")
        if event["schema_version"] > SCHEMA_VERSION:
            raise TraceError(f"{where}: trace schema version {event['schema_version']!r}; this forethought reads "
                             f"versions up to {SCHEMA_VERSION}: upgrade forethought to read it")
        trace.task = event
    elif kind == "task":
        raise TraceError(f"{where}: a second 'task' event (one trace holds one task)")
    elif kind == "start":
        trace.goal = event["goal"]
    elif kind == "observation":
        _add_observation(trace, event, where)
    elif kind == "prompt":
        trace.prompts[event["hash"]] = event["messages"]
    elif kind == "llm_call":
        if event["prompt_hash"] not in trace.prompts:
            raise TraceError(f"{where}: call refers to prompt {event['prompt_hash'][:12]}, which no earlier line holds")
        trace.calls.append(event)
    elif kind == "step":
        for name in ("before", "after"):
            index = event.get(name)
            if index is not None and not 0 <= index < len(trace.observations):
                raise TraceError(f"{where}: step refers to observation {index}, which no earlier line holds")
        trace.steps.append(event)
    elif kind == "end":
        trace.end = event
    trace.events.append(event)


def _add_observation(trace: Trace, event: dict[str, Any], where: str) -> None:
    if event["index"] != len(trace.observations):
        raise TraceError(f"{where}: observation {event['index']} out of order (expected {len(trace.observations)})")
    if "elements_from" in event:
        if event["elements_from"] >= len(trace.observations):
            raise TraceError(f"{where}: observation takes its elements from observation {event['elements_from']}, "
                             "which no earlier line holds")
        event = {**event, "elements": trace.observations[event["elements_from"]]["elements"]}
    trace.observations.append(event)
