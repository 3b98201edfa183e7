"""Compute-optimal per step (Snell et al.: the best use of test-time compute depends on difficulty).

Each step starts with ONE policy call that samples several answers (n = `proposal_samples`); their
candidates are merged by votes. Then cheap signals say how hard the step is:

  agreement  share of the sampled answers whose top action is the greedy one (the first answer's top,
             what a reactive step would do: agent/proposer.py)
  new page   the URL was not seen before in this task
  surprise   how far the last real step departed from its prediction: 1 - F1 of the changes it
             predicted against the page's real change (world_model/surprise.py); 1.0 when the
             action failed or the prediction was empty or unparsed, unknown when it imagined nothing
  risky      the top (greedy) action is predicted to be irreversible (its margin must be checked)
  spread     after rerank: the verifier's best score minus its runner-up

and choose the step's mode and its K/H/m (`AdaptiveSettings`):

  surprise >= surprise_hard                                  -> beam (the world is not as we thought),
      unless the last step already ran beam: imagining deeper did not pay there, so the step is
      decided as if nothing had surprised (a weak world model would otherwise search every step)
  agreement >= agreement_easy (on a new page: >= agreement_easy_new_page), no surprise, safe
                                                             -> reactive (act on the greedy action)
  proposals disagree (and not rerank_first)                  -> dreamer (imagine and score)
  otherwise (agreeing but risky, or rerank_first)            -> rerank, and then
      spread >= spread_clear                                 -> keep rerank's choice
      else                                                   -> dreamer (imagine and re-score)

So a surprising real outcome raises the next step's compute, and a step whose proposals agree (all
of them, on a page not seen before) spends nothing beyond its proposal call. Each decision, with its
signals and why, goes into the step record (`adaptive`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from agent.config import AdaptiveSettings, StepPlan
from agent.llm.protocol import LLM, Completion, Role
from agent.proposer import Proposal, propose_candidates
from agent.verifier import Score
from envs.types import Observation
from world_model.messages import Message, PagePicture


@dataclass
class Signals:
    agreement: float | None = None  # None: only one answer was sampled
    new_page: bool = False
    surprise: float | None = None  # None: the last step predicted nothing (or there was none)
    risky: str | None = None  # why the top (greedy) action is irreversible
    spread: float | None = None  # after rerank only
    last_mode: str | None = None  # the mode the last real step ran

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    plan: StepPlan
    why: str
    signals: Signals
    scores: dict[str, float] | None = None  # the scores this decision was made on (after rerank)

    def to_dict(self) -> dict[str, Any]:
        data = {**self.plan.to_dict(), "why": self.why, "signals": self.signals.to_dict()}
        if self.scores is not None:
            data["scores"] = self.scores
        return data


def first_decision(signals: Signals, settings: AdaptiveSettings) -> Decision:
    """The step's mode from the signals known before any scoring."""
    surprised = signals.surprise is not None and signals.surprise >= settings.surprise_hard
    if surprised:
        why = f"the last step surprised (surprise {signals.surprise:.2f} >= {settings.surprise_hard:.2f})"
        if signals.last_mode != "beam":
            return Decision(settings.plan("beam"), why, signals)
    hesitations = []
    needed = settings.agreement_easy_new_page if signals.new_page else settings.agreement_easy
    where = "a new page" if signals.new_page else "a known page"
    disagree = signals.agreement is None or signals.agreement < needed
    if disagree:
        agreement = "one sample" if signals.agreement is None else f"{signals.agreement:.2f}"
        hesitations.append(f"proposals disagree (agreement {agreement} < {needed:.2f} on {where})")
    if signals.risky:
        hesitations.append(f"the top action is irreversible ({signals.risky})")
    after_beam = f"{why}, but beam did not pay last step; " if surprised else ""
    if not hesitations:
        why = f"{after_beam}easy: proposals agree ({signals.agreement:.2f} >= {needed:.2f}) on {where}"
        if signals.surprise is not None and not surprised:
            why += f", last surprise {signals.surprise:.2f} < {settings.surprise_hard:.2f}"
        return Decision(settings.plan("reactive"), why, signals)
    why = after_beam + "; ".join(hesitations)
    if disagree and not settings.rerank_first:
        return Decision(settings.plan("dreamer"), f"{why}: imagine the outcomes", signals)
    return Decision(settings.plan("rerank"), why, signals)


def after_rerank(signals: Signals, scores: Mapping[str, Score], settings: AdaptiveSettings) -> Decision:
    """Keep rerank's choice when the verifier clearly prefers one candidate; else imagine (dreamer)."""
    values = sorted((s.value for s in scores.values()), reverse=True)
    spread = round(values[0] - (values[1] if len(values) > 1 else 0.0), 4)
    signals = Signals(**{**asdict(signals), "spread": spread})
    seen = {a: s.value for a, s in scores.items()}
    if spread >= settings.spread_clear:
        return Decision(settings.plan("rerank"), f"the verifier is clear (spread {spread:.2f} >= "
                                                 f"{settings.spread_clear:.2f})", signals, seen)
    return Decision(settings.plan("dreamer"), f"the verifier is unsure (spread {spread:.2f} < "
                                              f"{settings.spread_clear:.2f}): imagine the outcomes", signals, seen)


def step_signals(obs: Observation, visited: Sequence[str], last_failed: bool, last_surprise: float | None,
                 last_mode: str | None, agreement: float | None, risky: str | None) -> Signals:
    """The signals known before any scoring. A failed last action is a full surprise (a dialog or a
    download the page started on its own is not a failure)."""
    surprise = 1.0 if last_failed else last_surprise
    return Signals(agreement=agreement, new_page=obs.url not in visited, surprise=surprise, risky=risky,
                   last_mode=last_mode)


async def propose_by_vote(
    llm: LLM, goal: str, obs: Observation, page_text: str, history: Sequence[str], k: int, samples: int, *,
    picture: PagePicture | None = None,
) -> tuple[Proposal, float | None]:
    """(proposal, agreement) from ONE policy call with `samples` answers, each parsed and validated by
    the proposer. The first answer's first action is the greedy candidate (a reactive step's action,
    agent/proposer.py) and stays first; the others follow by how many answers proposed them, then by
    their best rank. Agreement is the share of answers whose top action is the greedy one."""
    batch = _OneCallManyAnswers(llm, samples)
    proposals = [await propose_candidates(batch, goal, obs, page_text, history, k, picture=picture)]
    while batch.answers:  # some endpoints return fewer than n answers: vote over those there are
        proposals.append(await propose_candidates(batch, goal, obs, page_text, history, k, picture=picture))
    votes: Counter[str] = Counter()
    best_rank: dict[str, int] = {}
    merged = Proposal(candidates=[], answer=proposals[0].answer)
    for proposal in proposals:
        merged.rejected += proposal.rejected
        for rank, action in enumerate(proposal.candidates):
            votes[action] += 1
            best_rank[action] = min(rank, best_rank.get(action, rank))
            merged.reasons.setdefault(action, proposal.reasons.get(action, ""))
    by_votes = sorted(votes, key=lambda a: (-votes[a], best_rank[a]))
    # With no usable action in the first answer there is no greedy one: the voted top leads.
    greedy = proposals[0].candidates[:1]
    merged.candidates = (greedy + [a for a in by_votes if a not in greedy])[:k]
    if len(proposals) == 1 or not merged.candidates:
        return merged, None
    tops = Counter(p.candidates[0] for p in proposals if p.candidates)
    agreement = round(tops[merged.candidates[0]] / len(proposals), 4)  # an answer with no usable action disagrees
    return merged, agreement


class _OneCallManyAnswers:
    """Serves the proposer's one-answer calls from one call for `n` answers (so the proposer parses
    and validates each sampled answer exactly as it does its own)."""

    def __init__(self, llm: LLM, n: int) -> None:
        self.llm = llm
        self.n = n
        self.answers: list[Completion] | None = None

    async def complete(self, role: Role, messages: list[Message], *, n: int = 1,
                       json_schema: dict[str, Any] | None = None, temperature: float | None = None) -> list[Completion]:
        if self.answers is None:
            self.answers = await self.llm.complete(role, messages, n=self.n, json_schema=json_schema,
                                                   temperature=temperature)
        return [self.answers.pop(0)]
