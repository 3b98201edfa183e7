"""Candidate actions from the policy: parsed, validated against the page's ids, de-duplicated, and
optionally filtered by a self-refinement call that drops irrelevant ones.

The first candidate is the greedy one: the action a reactive step (k=1) would take on the same page
with the same model and seed. The prompt's text does not depend on k (only the JSON schema's
minItems/maxItems do), so the first item is decoded from the same prompt, and under a grammar
(llama.cpp) with the same allowed tokens and the same seeded random draws, up to the end of its
action: the grammars for k=1 and k=3 differ only after the first item. De-duplication and
self-refinement keep it first. agent/graph.py's `select` lets a verdict overrule it only by a margin.
Where this is not exact: an endpoint that samples `n` answers of one request (OpenAI) or that does
not enforce the schema (the count is then part of the prompt), and llama.cpp's own numerics when the
prompt cache or batch differs (a near-tie in greedy decoding may flip).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.llm.protocol import LLM
from envs.actions import Action, ActionError, format_action, parse_action
from envs.types import Observation
from world_model.messages import PagePicture, shown_to
from world_model.templates import load_template
from world_model.world_model import format_history

PROMPTS = Path(__file__).parent / "prompts"

CANDIDATES_SCHEMA: dict[str, Any] = {
    "title": "candidates",
    "type": "object",
    "properties": {
        "candidates": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"action": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["action", "reason"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["candidates"],
    "additionalProperties": False,
}
# A quoted text argument ('...' or "...", as the canonical form writes it): no unescaped quote or newline.
_TEXT_ARG = r"""(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_ACTIONS_WITHOUT_IDS = [
    r"scroll\(-?[0-9]+, -?[0-9]+\)", rf"goto\({_TEXT_ARG}\)", r"(?:go_back|go_forward|new_tab|tab_close)\(\)",
    r"tab_focus\([0-9]+\)", r"noop\([0-9]*\)", rf"(?:send_msg_to_user|report_infeasible)\({_TEXT_ARG}\)",
]


def candidates_schema(obs: Observation, k: int) -> dict[str, Any]:
    """CANDIDATES_SCHEMA with each action constrained to the action grammar and the ids on this page, so
    that endpoints enforcing schemas (llama.cpp's grammars) make even a tiny model name a real element."""
    ids = sorted(obs.ids(), key=lambda i: (len(i), i))
    forms = list(_ACTIONS_WITHOUT_IDS)
    if ids:
        one_of_ids = "'(?:" + "|".join(re.escape(i) for i in ids) + ")'"
        forms[:0] = [rf"(?:click|dblclick|hover|focus|clear)\({one_of_ids}\)",
                     rf"(?:fill|select_option|press)\({one_of_ids}, {_TEXT_ARG}\)"]
    schema = json.loads(json.dumps(CANDIDATES_SCHEMA))  # a deep copy
    candidates = schema["properties"]["candidates"]
    # k items, not "up to k": a tiny model otherwise stops at one; repeats are de-duplicated below.
    candidates.update(minItems=max(1, k), maxItems=max(1, k))
    candidates["items"]["properties"] = {
        "action": {"type": "string", "pattern": "^(?:" + "|".join(forms) + ")$"},
        "reason": {"type": "string", "maxLength": 100},  # K reasons: on a CPU every token costs
    }
    return schema


KEEP_SCHEMA: dict[str, Any] = {
    "title": "keep",
    "type": "object",
    "properties": {"keep": {"type": "array", "items": {"type": "integer"}}},
    "required": ["keep"],
    "additionalProperties": False,
}
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_ACTION_LABEL = re.compile(r"^\s*(?:next\s+)?action\s*:\s*", re.IGNORECASE)


@dataclass
class Proposal:
    candidates: list[str]  # canonical action texts, the greedy one first, unique, at most k
    reasons: dict[str, str] = field(default_factory=dict)  # candidate -> the policy's reason
    rejected: list[dict[str, str]] = field(default_factory=list)  # {"answer": ..., "error": ...}
    refined_out: list[str] = field(default_factory=list)  # dropped by self-refinement
    answer: str = ""  # the policy's raw answer

    @property
    def unparseable(self) -> bool:
        return not self.candidates


async def propose_candidates(
    llm: LLM,
    goal: str,
    obs: Observation,
    page_text: str,
    history: Sequence[str],
    k: int,
    self_refine: bool = False,
    *,
    picture: PagePicture | None = None,
) -> Proposal:
    """Up to `k` valid, distinct candidate actions for `obs` from the `policy` role (shown `picture`
    when it is for the policy)."""
    # The prompt does not name k (see the module's docstring): the schema alone asks for k items.
    messages = load_template(PROMPTS / "propose.txt").render(
        goal=goal, history=format_history(history), observation=page_text, picture=shown_to("policy", picture)
    )
    [answer] = await llm.complete("policy", messages, json_schema=candidates_schema(obs, k))
    proposal = Proposal(candidates=[], answer=answer.text)
    for raw, reason in _proposed_actions(answer.text, answer.data):
        try:
            action = parse_action(raw)
            action.check_ids(obs)
            _check_no_placeholder(action)
        except ActionError as exc:
            proposal.rejected.append({"answer": raw, "error": str(exc)})
            continue
        text = format_action(action)
        if text not in proposal.candidates and len(proposal.candidates) < k:
            proposal.candidates.append(text)
            proposal.reasons[text] = reason
    if self_refine and len(proposal.candidates) > 1:
        keep = await _refine(llm, goal, page_text, history, proposal.candidates, picture)
        keep.add(proposal.candidates[0])  # the greedy candidate is never refined out
        proposal.refined_out = [c for c in proposal.candidates if c not in keep]
        proposal.candidates = [c for c in proposal.candidates if c in keep]
    return proposal


_PLACEHOLDER = re.compile(r"^<[^<>]*>$")  # the action list's '<text to type>', '<the answer>', ...


def _check_no_placeholder(action: Action) -> None:
    """A value copied from the action list as it stands there is no value: the proposal is rejected so
    the policy is asked again (small models copy '<text to type>' rather than the task's text)."""
    for arg in action.args:
        if isinstance(arg, str) and _PLACEHOLDER.match(arg.strip()):
            raise ActionError(f"{arg!r} is the action list's placeholder: write the real value in its place")


def _proposed_actions(text: str, data: Any) -> list[tuple[str, str]]:
    """(action text, reason) pairs from the JSON answer, or from the lines of a plain-text one."""
    if isinstance(data, dict):
        items = data.get("candidates", data.get("actions"))
        if items is None and "action" in data:
            items = [data]
        if isinstance(items, list):
            pairs = []
            for item in items:
                if isinstance(item, dict):
                    pairs.append((str(item.get("action", "")), str(item.get("reason", ""))))
                else:
                    pairs.append((str(item), ""))
            return pairs
    lines = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("```")]
    return [(_ACTION_LABEL.sub("", _LIST_MARKER.sub("", line)).strip(), "") for line in lines]


async def _refine(llm: LLM, goal: str, page_text: str, history: Sequence[str], candidates: list[str],
                  picture: PagePicture | None) -> set[str]:
    """The candidates self-refinement keeps; all of them when it keeps none (it must not stall the run)."""
    listing = "\n".join(f"{i}. {c}" for i, c in enumerate(candidates, 1))
    messages = load_template(PROMPTS / "refine.txt").render(
        goal=goal, history=format_history(history), observation=page_text, candidates=listing,
        picture=shown_to("policy", picture),
    )
    [answer] = await llm.complete("policy", messages, json_schema=KEEP_SCHEMA)
    data = answer.data if isinstance(answer.data, dict) else {}
    keep_field = data.get("keep")
    picks = keep_field if isinstance(keep_field, list) else re.findall(r"\d+", answer.text)
    keep: set[str] = set()
    for pick in picks:
        if isinstance(pick, str) and pick in candidates:
            keep.add(pick)
        elif str(pick).strip().isdigit() and 1 <= int(str(pick).strip()) <= len(candidates):
            keep.add(candidates[int(str(pick).strip()) - 1])
    return keep or set(candidates)
