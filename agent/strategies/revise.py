"""Sequential revisions (Snell et al.'s first lever): the policy sees what the world model predicts its
action would do and the verifier's critique of it, and proposes a revised action; up to R rounds.

Every version is kept with its imagined outcome and score, and the graph's select step runs the
first version unless a later one out-scores it by the overrule margin (then the best of ALL
versions): a revision can make things worse, so the last version is not automatically the one that
runs. Revising stops early when a version already scores
"complete", when the policy repeats an earlier version (it has nothing better), or when its answer
is not a usable action.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.llm.protocol import LLM
from agent.verifier import Score
from envs.actions import ActionError, format_action, parse_action
from envs.tokens import clip_to_tokens
from envs.types import Observation
from world_model.messages import PagePicture, shown_to
from world_model.templates import load_template
from world_model.world_model import ACTION_TOKENS, ImaginedStep, describe, format_history

PROMPT = Path(__file__).parent / "prompts" / "revise.txt"
REVISION_SCHEMA: dict[str, Any] = {
    "title": "revision",
    "type": "object",
    "properties": {"action": {"type": "string"}, "reason": {"type": "string"}},
    "required": ["action", "reason"],
    "additionalProperties": False,
}
COMPLETE = 1.0  # the verifier's top verdict: nothing left to improve
CRITIQUE_TOKENS = 300  # of a version's critiques, shown to the policy (m verdicts' reasons joined)


@dataclass
class Versions:
    """The versions of one step's action, in the order they were proposed."""

    actions: list[str]
    reasons: dict[str, str]  # action -> the policy's reason for it
    imagined: dict[str, list[ImaginedStep]]
    scores: dict[str, Score]
    note: str = ""  # why revising stopped


async def revise_versions(
    llm: LLM,
    goal: str,
    obs: Observation,
    page_text: str,
    history: Sequence[str],
    versions: Versions,
    rounds: int,
    imagine: Callable[[str], Awaitable[list[ImaginedStep]]],
    score: Callable[[str, list[ImaginedStep]], Awaitable[Score]],
    *,
    picture: PagePicture | None = None,
) -> Versions:
    """Up to `rounds` revisions after the imagined and scored first version(s) in `versions` (the policy
    shown the page's `picture` when it is for the policy)."""
    for _ in range(rounds):
        best = max(versions.actions, key=lambda a: versions.scores[a].value)
        if versions.scores[best].value >= COMPLETE:
            versions.note = f"version {versions.actions.index(best) + 1} scores complete: nothing to revise"
            return versions
        action, reason, problem = await propose_revision(llm, goal, obs, page_text, history, versions, picture=picture)
        if problem:
            versions.note = problem
            return versions
        if action in versions.actions:
            versions.note = f"the policy kept version {versions.actions.index(action) + 1} ({action})"
            return versions
        versions.actions.append(action)
        versions.reasons[action] = reason
        versions.imagined[action] = await imagine(action)
        versions.scores[action] = await score(action, versions.imagined[action])
    versions.note = f"{rounds} revision round(s) done"
    return versions


async def propose_revision(
    llm: LLM, goal: str, obs: Observation, page_text: str, history: Sequence[str], versions: Versions, *,
    picture: PagePicture | None = None,
) -> tuple[str, str, str | None]:
    """(revised action, reason, None), or ("", "", why there is no usable revision)."""
    messages = load_template(PROMPT).render(
        goal=goal, history=format_history(history), observation=page_text, versions=versions_text(versions),
        picture=shown_to("policy", picture),
    )
    [answer] = await llm.complete("policy", messages, json_schema=REVISION_SCHEMA)
    data = answer.data if isinstance(answer.data, dict) else None
    proposed = str(data.get("action", "")) if data else answer.text
    reason = str(data.get("reason", "")) if data else ""
    try:
        action = parse_action(proposed)
        action.check_ids(obs)
    except ActionError as exc:
        return "", "", f"the revision {proposed.strip()[:80]!r} is not a usable action ({exc})"
    return format_action(action), reason, None


def versions_text(versions: Versions) -> str:
    """Each version with its predicted outcome and the verifier's verdict and critique."""
    blocks = []
    for i, action in enumerate(versions.actions, 1):
        lines = [f"Version {i}: {clip_to_tokens(action, ACTION_TOKENS)}"]
        for j, step in enumerate(versions.imagined.get(action) or []):
            prefix = "Predicted outcome" if j == 0 else f"Then {step.action}, predicted"
            lines.append(f"{prefix}: {describe(step.prediction)}")
        score = versions.scores[action]
        critique = " / ".join(dict.fromkeys(r.strip() for r in score.reasons if r.strip())) or "(no reason given)"
        critique = clip_to_tokens(critique, CRITIQUE_TOKENS)
        lines.append(f"Reviewer's score: {score.value:.2f} (1 complete, 0.5 on track, 0 wrong). Critique: {critique}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
