"""Choosing what runs: the greedy candidate unless a verdict overrules it by a margin
(`preference_order`), then the risk gate.

The risk gate: actions predicted to be irreversible (placing an order, deleting, posting, sending,
paying, submitting a form that changes server state) must out-score the best reversible candidate
by a margin, and in safe mode are refused.

Classification is cheap and rule-based: an action that activates an element (click, Enter) is
irreversible when the element's name says so ("Place order", "Delete", "Post comment"), or when
the world model predicts an irreversible outcome ("the order is placed"). Typing, hovering,
scrolling and navigating by URL never change server state here; answering the user is not a
page action.

Safe mode: refused candidates are skipped and the best remaining one runs; when every candidate is
refused, the run stops (STOP_REFUSED) with the reason in the step record — the agent never acts
irreversibly in safe mode.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.verifier import Score
from envs.actions import ActionError, parse_action
from envs.types import Observation
from world_model.world_model import Prediction

# Element names that commit something on the server when activated.
_IRREVERSIBLE_NAME = re.compile(
    r"\b(place (?:your |the )?order|(?:submit|confirm|complete) (?:your |the )?(?:order|purchase|payment)"
    r"|order now|buy|purchase|pay(?: now)?|checkout and pay|delete|remove|destroy|erase|discard"
    r"|post|publish|send|submit|transfer|merge|unsubscribe|cancel (?:my |the |your )?(?:order|subscription|account))\b",
    re.IGNORECASE,
)
# Predicted outcomes that mean something was committed.
_IRREVERSIBLE_OUTCOME = re.compile(
    r"\b(order (?:is |has been |was |gets )?(?:placed|confirmed|submitted)|order confirmation|payment"
    r"|(?:is|are|has been|have been|was|were|gets|get) (?:permanently )?(?:deleted|removed|posted|published|sent"
    r"|submitted|charged|purchased|merged)|permanently)\b",
    re.IGNORECASE,
)
_ACTIVATING_KEYS = {"enter", "space", " "}


def irreversible_reason(action: str, obs: Observation, prediction: Prediction | None = None) -> str | None:
    """Why `action` on `obs` is predicted to be irreversible, or None when it is not."""
    try:
        parsed = parse_action(action)
    except ActionError:
        return None  # candidates are parsed before they get here; an unparseable one never runs
    target_id: str | None = None
    if parsed.name in ("click", "dblclick"):
        target_id = parsed.args[0]
    elif parsed.name == "press" and parsed.args[1].strip().lower() in _ACTIVATING_KEYS:
        target_id = parsed.args[0]
    elif parsed.name == "keyboard_press" and parsed.args[0].strip().lower() in _ACTIVATING_KEYS:
        target_id = obs.focused_id
    elif parsed.name == "fill" and len(parsed.args) > 2 and parsed.args[2]:  # press_enter=True submits
        target_id = parsed.args[0]
    else:
        return None
    element = obs.element(target_id) if target_id else None
    if element is not None and element.role != "link":  # links navigate (GET); their outcome is judged below
        match = _IRREVERSIBLE_NAME.search(element.name)
        if match:
            commits = match.group(0).lower()
            return f"{parsed.name} on {element.role} '{element.name}' ({commits!r} commits on the server)"
    if prediction is not None:
        match = _IRREVERSIBLE_OUTCOME.search(prediction.description)
        if match:
            return f"the world model predicts {match.group(0).lower()!r}: {prediction.description}"
    return None


def known_candidates(candidates: Sequence[str], scores: Mapping[str, Score]) -> set[str]:
    """Those whose outcome the page told: they fail or change nothing (Score.known)."""
    return {a for a in candidates if a in scores and scores[a].known}


def preference_order(candidates: Sequence[str], scores: Mapping[str, Score], margin: float) -> list[str]:
    """`candidates` (the greedy one first, as proposed) in the order `select` prefers them: the others
    that out-score the greedy candidate by at least `margin` (best first), then the greedy one, then
    the rest (scored best first, then unscored; the policy's order among equals). An unscored greedy
    candidate counts as 0 when others are scored; with no scores (reactive) the greedy one leads.
    Candidates known to fail or change nothing (Score.known) come last, and a greedy one that is loses
    the margin's protection: the margin guards against a verifier's guesses, not against facts."""
    if not candidates:
        return []
    greedy, others = candidates[0], list(candidates[1:])
    known = known_candidates(candidates, scores)
    others.sort(key=lambda a: (a in known, a not in scores, -scores[a].value if a in scores else 0.0))  # stable
    base = scores[greedy].value if greedy in scores else 0.0

    def overrules(action: str) -> bool:
        if action in known:
            return False
        if greedy in known:
            return True
        if action not in scores or scores[action].value <= base:  # a tie never overrules
            return False
        return round(scores[action].value - base, 6) >= round(margin, 6)  # 0.7 - 0.5 is 0.19999...

    return [a for a in others if overrules(a)] + [greedy] + [a for a in others if not overrules(a)]


@dataclass
class GateDecision:
    choice: str | None  # None: nothing may run (the run stops)
    note: str | None = None  # what the gate did and why, for the step record


def gate(
    ranked: Sequence[str], scores: Mapping[str, Score], risky: Mapping[str, str], *, safe: bool, margin: float
) -> GateDecision:
    """The action to run from `ranked` (preferred first: `preference_order`), given which candidates
    are irreversible (`risky`). An irreversible first choice must out-score the best-scoring
    reversible candidate by `margin`; when it does not, the first reversible one in `ranked` runs.

    Unscored candidates count as 0 against an irreversible one; with no scores at all (reactive)
    there is no margin to check, so only safe mode can hold an irreversible action back. A candidate
    known to fail or change nothing (Score.known) is no alternative: it is never run instead.
    """
    if not ranked:
        return GateDecision(None, "no candidate to run")
    best = ranked[0]
    if best not in risky:
        return GateDecision(best)
    known = known_candidates(ranked, scores)
    reversible = [a for a in ranked if a not in risky and a not in known]
    if safe:
        refused = "; ".join(f"{a}: {risky[a]}" for a in ranked if a in risky)
        if reversible:
            return GateDecision(reversible[0], f"safe mode refused irreversible {refused}; ran {reversible[0]} instead")
        return GateDecision(None, f"safe mode refused irreversible {refused}; no reversible candidate left")
    if not scores:
        return GateDecision(best, f"irreversible ({risky[best]}); not scored, so no margin to check")

    def value(action: str) -> float:
        return scores[action].value if action in scores else 0.0

    best_reversible = max(reversible, key=value) if reversible else None  # max keeps the first of equals
    floor = value(best_reversible) if best_reversible else 0.0
    against = f"best reversible {best_reversible} scores {floor:.2f}" if best_reversible else "no reversible candidate"
    if value(best) >= floor + margin:
        return GateDecision(best, f"irreversible ({risky[best]}) but scores {value(best):.2f}; {against}, "
                                  f"margin {margin:.2f} met")
    if reversible:
        return GateDecision(reversible[0], f"held back irreversible {best} ({risky[best]}): scores {value(best):.2f}, "
                                           f"{against}, margin {margin:.2f} not met; ran {reversible[0]} instead")
    return GateDecision(None, f"held back irreversible {best} ({risky[best]}): scores {value(best):.2f} < "
                              f"margin {margin:.2f} and {against}")
