"""Scripted answers in the shapes the planner's prompts ask for."""
from __future__ import annotations

import json


def candidates(*actions: str) -> str:
    """A policy answer proposing `actions`, in the proposer's JSON schema."""
    return json.dumps({"candidates": [{"action": a, "reason": "it might help"} for a in actions]})
