"""What a fake OpenAI-compatible endpoint (agent/llm/fake_server.py) answers to the planner's requests.

Not a bench itself: step_latency.py, and the quick modes of local_model.py and compute_frontier.py,
serve these answers so that the planner runs through the real openai client without a real model.

Every role's prompt in a step starts with the same system text, task, history and page, so a request
is told apart by the answer it asks for: the fields of its JSON schema (sent as `response_format`,
or written into the last message for an endpoint without structured outputs).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# A field only one kind of answer has -> that kind of request.
KIND_BY_FIELD = {"changes": "prediction", "verdict": "verdict", "candidates": "proposal",
                 "keep": "refine", "action": "action"}
UNEXPECTED = "unexpected"


def requested_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema a chat request asks its answer to match ({} when it asks for none)."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return dict(response_format["json_schema"]["schema"])
    marker = "JSON schema:\n"  # agent/llm/openai_client.py's plain-text fallback
    last = str(body["messages"][-1]["content"]) if body.get("messages") else ""
    return dict(json.loads(last.rsplit(marker, 1)[1])) if marker in last else {}


def request_kind(body: dict[str, Any]) -> str:
    """prediction, verdict, proposal, refine, action (one next action: revise, imagined policy) or UNEXPECTED."""
    fields = set(requested_schema(body).get("properties", {}))
    return next((kind for field, kind in KIND_BY_FIELD.items() if field in fields), UNEXPECTED)


def page_ids(body: dict[str, Any], role: str = "") -> list[str]:
    """The element ids on the page in the request (of elements whose role starts with `role`)."""
    page = str(body["messages"][-1]["content"]).partition("<page>")[2].partition("</page>")[0]
    return re.findall(rf"^\s*\[(e\d+)\] {re.escape(role)}", page, re.MULTILINE)


def actions_done(body: dict[str, Any]) -> int:
    """How many real actions the request's history lists (numbered lines before the page)."""
    history = str(body["messages"][-1]["content"]).partition("<page>")[0]
    return len(re.findall(r"^\d+\. ", history, re.MULTILINE))


def planner_answers(k: int, role: str = "") -> Callable[[dict[str, Any]], str]:
    """An answer function for FakeOpenAIServer: proposals click up to `k` of the page's elements (of
    `role`), rotated by the actions done so far so that no action repeats step after step; a page
    without such elements gets an answer to the user. Predictions, verdicts and the rest are fixed."""

    def answer(body: dict[str, Any]) -> str:
        kind = request_kind(body)
        if kind == "prediction":
            return json.dumps({"changes": "The status line names the clicked element.", "url": "",
                               "appear": ["clicked"], "disappear": ["none"]})
        if kind == "verdict":
            return json.dumps({"reason": "progress", "verdict": "on track"})
        if kind in ("proposal", "action"):
            ids = page_ids(body, role)
            shift = actions_done(body) % len(ids) if ids else 0
            actions = [f"click('{i}')" for i in ids[shift:] + ids[:shift]][:k] or ["send_msg_to_user('done')"]
            if kind == "action":
                return json.dumps({"action": actions[0], "reason": "try it"})
            return json.dumps({"candidates": [{"action": a, "reason": "try it"} for a in actions]})
        if kind == "refine":
            return json.dumps({"keep": list(range(1, k + 1))})
        return "{}"  # nothing usable: a caller counting request kinds reports it

    return answer
