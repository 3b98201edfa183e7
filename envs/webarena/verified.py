"""WebArena-Verified's input for one task: `agent_response.json`, made from a plain final answer.

WebArena-Verified scores a JSON answer (`webarena_verified.types.agent_response.FinalAgentResponse`):
`{"task_type": RETRIEVE|MUTATE|NAVIGATE, "status": SUCCESS|NOT_FOUND_ERROR|..., "retrieved_data":
[...] or null, "error_details": null or a reason}`, next to the run's `network.har`
(`webarena-verified eval-tasks --output-dir OUT` reads `OUT/<task_id>/{agent_response.json,network.har}`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from envs.webarena.config import TaskConfig

TASK_TYPES = ("RETRIEVE", "MUTATE", "NAVIGATE")
STATUSES = ("SUCCESS", "ACTION_NOT_ALLOWED_ERROR", "PERMISSION_DENIED_ERROR", "NOT_FOUND_ERROR",
            "DATA_VALIDATION_ERROR", "UNKNOWN_ERROR")
# WebArena's "cannot be done" answer: "N/A", optionally followed by the reason ("N/A: no such order").
_NOT_ACHIEVABLE = re.compile(r"""^\s*["']?n/a\b[\s"'.:;,\-–—]*(?P<reason>.*)$""", re.IGNORECASE | re.DOTALL)


def infer_task_type(config: TaskConfig) -> str:
    """RETRIEVE / MUTATE / NAVIGATE from what WebArena checks: an answer (string_match) means
    retrieve; a URL alone, or only the current page's content (program_html on "last" without
    url_match: "show me ..."), means navigate; other page checks mean a state change, mutate.
    Agrees with WebArena-Verified's labels on 777 of the 812 official tasks. The expected task_type
    of WebArena-Verified is not used: it is part of what the agent is graded on."""
    if config.eval is None:
        raise ValueError(f"task {config.task_id}: no WebArena eval_types to infer the task type from; "
                         "pass task_type= explicitly")
    types = config.eval.eval_types
    if "string_match" in types:
        return "RETRIEVE"
    only_current_page = all(target.url == "last" for target in config.eval.program_html)
    if "program_html" in types and not ("url_match" not in types and only_current_page):
        return "MUTATE"
    return "NAVIGATE"


def agent_response(answer: str | None, task_type: str) -> dict[str, Any]:
    """The FinalAgentResponse for a plain final answer.

    - An answer that already is such a JSON object passes through unchanged.
    - "N/A" (with or without a reason after it) -> NOT_FOUND_ERROR, the reason in error_details.
    - No answer at all (None: the agent never stopped) -> UNKNOWN_ERROR.
    - Otherwise SUCCESS; for RETRIEVE the answer is the retrieved data (a JSON list answer is used as
      the list, anything else becomes a one-item list); MUTATE/NAVIGATE carry no data.
    """
    task_type = task_type.upper()
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type must be one of {', '.join(TASK_TYPES)}, got {task_type!r}")
    if answer is None:
        return _response(task_type, "UNKNOWN_ERROR", None, "the agent gave no final answer")
    given = _as_response_object(answer)
    if given is not None:
        return given
    not_achievable = _NOT_ACHIEVABLE.match(answer)
    if not_achievable:
        reason = not_achievable.group("reason").strip().strip("\"'").strip()
        return _response(task_type, "NOT_FOUND_ERROR", None, reason or "N/A")
    if task_type != "RETRIEVE":
        return _response(task_type, "SUCCESS", None, None)
    return _response(task_type, "SUCCESS", _retrieved_data(answer), None)


def _response(task_type: str, status: str, data: list[Any] | None, details: str | None) -> dict[str, Any]:
    return {"task_type": task_type, "status": status, "retrieved_data": data, "error_details": details}


def _as_response_object(answer: str) -> dict[str, Any] | None:
    try:
        data = json.loads(answer)
    except (json.JSONDecodeError, ValueError):
        return None
    if isinstance(data, dict) and {"task_type", "status"} <= set(data):
        return data
    return None


def _retrieved_data(answer: str) -> list[Any]:
    text = answer.strip()
    if text.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return data
    if not text:
        return []
    return [text]


def write_agent_response(task_dir: str | Path, answer: str | None, task_type: str) -> Path:
    """Write `<task_dir>/agent_response.json` and return its path."""
    path = Path(task_dir) / "agent_response.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(agent_response(answer, task_type), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path
