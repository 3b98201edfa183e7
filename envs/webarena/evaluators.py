"""WebArena's evaluators, with the original's exact semantics (quirks included).

Scoring follows web-arena-x/webarena `evaluation_harness/evaluators.py`: the evaluators named in
`eval_types` run in that order on the same page and their scores multiply (`evaluate`). Each result
carries a per-check explanation (what was expected, what was found) for people reading the run.
Here: string_match (with the LLM judge) and url_match; program_html is envs/webarena/program_html.py,
what a result holds and the shared string comparisons are envs/webarena/checks.py.

The fuzzy_match judge is any `async (prompt: str) -> str` (see `Judge`); envs never imports the
agent's LLM client — the agent layer adapts its LLM to this protocol.
"""
from __future__ import annotations

import collections
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from envs.webarena.checks import (
    Check,
    Evaluation,
    EvaluationError,
    EvaluatorResult,
    brief,
    clean_answer,
    exact_match,
    must_include,
    word_tokenize,
)
from envs.webarena.config import OR_SEPARATOR, EvalConfig, TaskConfig
from envs.webarena.program_html import DEFAULT_PAGE_WAIT_SECONDS, Helper, evaluate_program_html


class Judge(Protocol):
    """An LLM used as a grader: takes one prompt, returns the reply text (temperature 0 advised)."""

    async def __call__(self, prompt: str) -> str: ...


class JudgeRequiredError(EvaluationError):
    """A check needs an LLM judge (fuzzy_match, the N/A reason) and none was given."""


class JudgeReplyError(EvaluationError):
    """The judge's reply says neither verdict; WebArena asserts here, so this is an error, not a 0."""


# ----------------------------------------------------------------------------------------------
# LLM judge prompts (the meaning of WebArena's, in our own words)

FUZZY_PROMPT = """You are grading a student's answer to a question for a teacher. The student may \
word things differently from the reference; what matters is whether the answer means the same as \
the reference answer.
question: {question}
reference answer: {reference}
Wherever you see the string 'N/A', it is a special marker meaning 'not achievable'.
student answer: {answer}
End your judgement with exactly one of: correct, incorrect, partially correct."""

UNACHIEVABLE_PROMPT = """Task_1 cannot be completed, for the reason given in Reason_1. Someone \
attempted Task_1, failed, and described the attempt in Report_1. Decide whether Report_1 points to \
Reason_1, even implicitly. Reply "same" if it does, "different" if it does not.
Task_1 = {question}
Reason_1 = {reason}
Report_1 = {answer}
Reply [same] or [different]."""


async def llm_fuzzy_match(answer: str, reference: str, question: str, judge: Judge) -> tuple[float, str]:
    reply = await judge(FUZZY_PROMPT.format(question=question, reference=reference, answer=answer))
    verdict = reply.lower()
    if "partially correct" in verdict or "incorrect" in verdict:
        return 0.0, reply
    if "correct" in verdict:
        return 1.0, reply
    raise JudgeReplyError(f"fuzzy_match judge replied neither correct/incorrect/partially correct: {reply[:200]!r}")


async def llm_unachievable_match(answer: str, reason: str, question: str, judge: Judge) -> tuple[float, str]:
    reply = await judge(UNACHIEVABLE_PROMPT.format(question=question, reason=reason, answer=answer))
    verdict = reply.lower()
    if "different" in verdict:
        return 0.0, reply
    if "same" in verdict:
        return 1.0, reply
    raise JudgeReplyError(f"N/A judge replied neither same nor different: {reply[:200]!r}")


# ----------------------------------------------------------------------------------------------
# string_match


async def evaluate_string_match(ev: EvalConfig, intent: str, answer: str, judge: Judge | None = None,
                                task_id: Any = "?") -> EvaluatorResult:
    """Compare the agent's final answer with `reference_answers`, in the config's key order."""
    pred = clean_answer(answer)
    checks: list[Check] = []
    score = 1.0
    for kind, value in ev.reference_answers.items():
        if kind == "exact_match":
            s = exact_match(value, pred)
            checks.append(Check("exact_match", s, repr(clean_answer(value)), repr(pred)))
            score *= s
        elif kind == "must_include":
            tokenize = len(value) == 1  # the single-item list rule
            for item in value:
                s = must_include(item, pred, tokenize=tokenize)
                as_token = tokenize and len(clean_answer(item)) == 1
                checks.append(Check("must_include", s, f"{clean_answer(item)!r} in the answer"
                                    + (" as a whole token" if as_token else ""), repr(pred),
                                    note=f"tokens {word_tokenize(pred)}" if as_token and not s else ""))
                score *= s
        elif kind == "fuzzy_match":
            if value == "N/A":
                s = exact_match("N/A", pred)
                checks.append(Check("N/A", s, "'n/a'", repr(pred)))
                score *= s
                if score != 1:
                    # WebArena replaces (does not multiply) the score with the judge's verdict on
                    # whether the answer gives the task's known reason it cannot be done.
                    grader = _require_judge(judge, task_id, "the N/A reason check (string_note)")
                    s, reply = await llm_unachievable_match(pred, ev.string_note, intent, grader)
                    checks.append(Check("N/A reason", s, f"a reason like {ev.string_note!r}", repr(pred),
                                        note=f"judge: {brief(reply)}"))
                    score = s
            else:
                for reference in value:  # the judge is asked even about an empty answer, as in WebArena
                    grader = _require_judge(judge, task_id, "fuzzy_match")
                    s, reply = await llm_fuzzy_match(pred, reference, intent, grader)
                    checks.append(Check("fuzzy_match", s, f"the same meaning as {reference!r}", repr(pred),
                                        f"judge: {brief(reply)}"))
                    score *= s
        else:
            checks.append(Check(kind, 1.0, "nothing", "-", "not an answer kind WebArena knows: ignored, as it does"))
    return EvaluatorResult("string_match", score, checks)


def _require_judge(judge: Judge | None, task_id: Any, what: str) -> Judge:
    if judge is None:
        raise JudgeRequiredError(f"task {task_id}: {what} needs an LLM judge; pass judge=<async (prompt) -> reply>")
    return judge


# ----------------------------------------------------------------------------------------------
# url_match


def _clean_url(url: str) -> str:
    return str(url).rstrip("/")


def _split_url(url: str) -> tuple[str, dict[str, list[str]]]:
    # Only the whole URL loses its trailing "/", not the path: "h/a/?q=1" does not match "h/a?q=1" (WebArena).
    parsed = urlparse(url)
    return parsed.netloc + parsed.path, parse_qs(parsed.query)


def evaluate_url_match(ev: EvalConfig, page_url: str) -> EvaluatorResult:
    """GOLD in PRED: some reference's netloc+path is a substring of the page's; every query key of
    any reference (keys of all |OR| alternatives are pooled, as in WebArena) shares a value with it."""
    if ev.url_note != "GOLD in PRED":
        raise EvaluationError(f"unknown url_note {ev.url_note!r}: WebArena only implements 'GOLD in PRED'")
    pred = _clean_url(page_url)
    refs = [_clean_url(u) for u in ev.reference_url.split(OR_SEPARATOR)]
    ref_paths: list[str] = []
    ref_queries: dict[str, set[str]] = collections.defaultdict(set)
    for ref in refs:
        path, query = _split_url(ref)
        ref_paths.append(path)
        for key, values in query.items():
            ref_queries[key].update(values)
    pred_path, pred_query = _split_url(pred)

    base = float(any(path in pred_path for path in ref_paths))
    checks = [Check("GOLD in PRED (netloc+path)", base, " or ".join(repr(p) for p in ref_paths) + " within",
                    repr(pred_path))]
    score = base
    for key, wanted in ref_queries.items():
        s = float(any(v in pred_query.get(key, []) for v in wanted))
        checks.append(Check(f"query {key}", s, f"one of {sorted(wanted)}", repr(pred_query.get(key, []))))
        score *= s
    return EvaluatorResult("url_match", score, checks)


# ----------------------------------------------------------------------------------------------
# All evaluators of a task

STOP_ANSWER = re.compile(r"stop ?\[(.+)\]")


def answer_from_stop_action(action: str) -> str:
    """WebArena's reading of `stop [answer]`: the bracket content, or "" when there is none."""
    match = STOP_ANSWER.search(action)
    return match.group(1) if match else ""


async def evaluate(config: TaskConfig, page: Any, answer: str | None, *, judge: Judge | None = None,
                   helpers: Mapping[str, Helper] | None = None,
                   wait_seconds: float = DEFAULT_PAGE_WAIT_SECONDS) -> Evaluation:
    """Run the task's evaluators in eval_types order on `page`; the score is their product.
    `answer` is the final answer as a plain string (None, when the agent gave none, counts as "")."""
    if config.eval is None:
        raise EvaluationError(
            f"task {config.task_id} has only WebArena-Verified evaluators; score it with the webarena-verified "
            "package from agent_response.json and network.har"
        )
    config.require_resolved()
    ev = config.eval
    results: list[EvaluatorResult] = []
    score = 1.0
    for eval_type in ev.eval_types:
        if eval_type == "string_match":
            result = await evaluate_string_match(ev, config.intent, answer or "", judge, config.task_id)
        elif eval_type == "url_match":
            result = evaluate_url_match(ev, page.url)
        elif eval_type == "program_html":
            result = await evaluate_program_html(ev, page, helpers, wait_seconds)
        else:
            raise EvaluationError(f"task {config.task_id}: eval_type {eval_type!r} is not supported")
        results.append(result)
        score *= result.score
    return Evaluation(score, results)
