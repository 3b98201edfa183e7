"""WebArena's evaluators, with the original's exact semantics (quirks included).

Scoring follows web-arena-x/webarena `evaluation_harness/evaluators.py`: the evaluators named in
`eval_types` run in that order on the same page and their scores multiply. Each result carries a
per-check explanation (what was expected, what was found) for people reading the run.

The fuzzy_match judge is any `async (prompt: str) -> str` (see `Judge`); envs never imports the
agent's LLM client — the agent layer adapts its LLM to this protocol.
"""
from __future__ import annotations

import ast
import asyncio
import collections
import functools
import html
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from envs.webarena.config import OR_SEPARATOR, EvalConfig, ProgramHtmlTarget, TaskConfig

DEFAULT_PAGE_WAIT_SECONDS = 3.0  # WebArena sleeps 3 s after opening a program_html URL


class Judge(Protocol):
    """An LLM used as a grader: takes one prompt, returns the reply text (temperature 0 advised)."""

    async def __call__(self, prompt: str) -> str: ...


class EvaluationError(RuntimeError):
    """The evaluation itself could not be carried out (as opposed to the agent failing it)."""


class JudgeRequiredError(EvaluationError):
    pass


class JudgeReplyError(EvaluationError):
    """The judge's reply says neither verdict; WebArena asserts here, so this is an error, not a 0."""


class HelperNotAvailableError(EvaluationError, NotImplementedError):
    pass


@dataclass
class Check:
    """One comparison inside an evaluator."""

    rule: str  # exact_match, must_include, fuzzy_match, N/A, GOLD in PRED, ...
    score: float
    expected: str
    found: str
    note: str = ""

    def describe(self) -> str:
        verdict = "pass" if self.score == 1.0 else "FAIL"
        note = f" ({self.note})" if self.note else ""
        return f"{verdict} {self.rule}: expected {self.expected}; found {self.found}{note}"


@dataclass
class EvaluatorResult:
    eval_type: str  # string_match | url_match | program_html
    score: float
    checks: list[Check] = field(default_factory=list)


@dataclass
class Evaluation:
    """The task's score (the product of its evaluators' scores) and why."""

    score: float
    results: list[EvaluatorResult]

    @property
    def success(self) -> bool:
        return self.score == 1.0

    def explain(self) -> str:
        lines = [f"score {self.score:g}"]
        for result in self.results:
            lines.append(f"{result.eval_type}: {result.score:g}")
            lines.extend(f"  {check.describe()}" for check in result.checks)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "results": [asdict(r) for r in self.results], "explanation": self.explain()}


# ----------------------------------------------------------------------------------------------
# String comparisons


def clean_answer(answer: str) -> str:
    """WebArena's normalisation: strip whitespace, drop one pair of surrounding quotes, lowercase."""
    answer = answer.strip()
    if answer.startswith("'") and answer.endswith("'"):
        answer = answer[1:-1]
    elif answer.startswith('"') and answer.endswith('"'):
        answer = answer[1:-1]
    return answer.lower()


def exact_match(ref: str, pred: str) -> float:
    return float(clean_answer(pred) == clean_answer(ref))


def must_include(ref: str, pred: str, tokenize: bool = False) -> float:
    """`ref` is a substring of `pred`; with `tokenize`, a one-character ref must be a whole token
    (WebArena's guard against "0" matching inside "10"; it also makes "0" fail on "$0.00")."""
    clean_ref = clean_answer(ref)
    clean_pred = clean_answer(pred)
    if tokenize and len(clean_ref) == 1 and len(word_tokenize(clean_ref)) == 1:
        return float(clean_ref in word_tokenize(clean_pred))
    return float(clean_ref in clean_pred)


@functools.lru_cache(maxsize=1)
def _punkt_available() -> bool:
    import nltk

    for resource in ("tokenizers/punkt_tab", "tokenizers/punkt"):
        try:
            nltk.data.find(resource)
            return True
        except LookupError:
            continue
    return False


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def word_tokenize(text: str) -> list[str]:
    """nltk.word_tokenize when its Punkt data is installed; otherwise the same word tokenizer
    (NLTKWordTokenizer) over sentences split at '. ', '! ', '? '. Punkt's sentence splitting is what
    lets a period end a word mid-text ("0. Next" -> "0", "."), and the split keeps that for plain
    text; abbreviations ("Mr. X") are split where Punkt would not, which only matters for a
    one-character reference equal to the split-off period or letter."""
    import nltk
    from nltk.tokenize import NLTKWordTokenizer

    if _punkt_available():
        return nltk.word_tokenize(text)
    tokenizer = NLTKWordTokenizer()
    return [token for sentence in _SENTENCE_END.split(text) for token in tokenizer.tokenize(sentence)]


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
                    _require_judge(judge, task_id, "the N/A reason check (string_note)")
                    s, reply = await llm_unachievable_match(pred, ev.string_note, intent, judge)
                    checks.append(Check("N/A reason", s, f"a reason like {ev.string_note!r}", repr(pred),
                                        note=f"judge: {_brief(reply)}"))
                    score = s
            else:
                for reference in value:
                    if len(pred) == 0:  # WebArena skips the judge for an empty answer
                        s, note = float(len(reference) == 0), "empty answer, judge not asked"
                    else:
                        _require_judge(judge, task_id, "fuzzy_match")
                        s, reply = await llm_fuzzy_match(pred, reference, intent, judge)
                        note = f"judge: {_brief(reply)}"
                    checks.append(Check("fuzzy_match", s, f"the same meaning as {reference!r}", repr(pred), note))
                    score *= s
    return EvaluatorResult("string_match", score, checks)


def _require_judge(judge: Judge | None, task_id: Any, what: str) -> None:
    if judge is None:
        raise JudgeRequiredError(f"task {task_id}: {what} needs an LLM judge; pass judge=<async (prompt) -> reply>")


def _brief(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------
# url_match


def _clean_url(url: str) -> str:
    return str(url).rstrip("/")


def _split_url(url: str) -> tuple[str, dict[str, list[str]]]:
    parsed = urlparse(url)
    return _clean_url(parsed.netloc + parsed.path), parse_qs(parsed.query)


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
    for key, values in ref_queries.items():
        s = float(any(v in pred_query.get(key, []) for v in values))
        checks.append(Check(f"query {key}", s, f"one of {sorted(values)}", repr(pred_query.get(key, []))))
        score *= s
    return EvaluatorResult("url_match", score, checks)


# ----------------------------------------------------------------------------------------------
# program_html

Helper = Callable[..., Any]  # returns a str, or an awaitable of one


def reddit_get_post_url(url: str) -> str:
    """A post or comment URL (http://host/f/forum/id/...) -> the post's URL; other URLs unchanged."""
    parsed = urlparse(url)
    parts = parsed.path.split("/")
    if len(parts) < 4 or parts[1] != "f":
        return url
    return f"{parsed.scheme}://{parsed.netloc}/f/{parts[2]}/{parts[3]}/"


async def gitlab_get_project_memeber_role(page: Any, account_name: str) -> str:
    """The role shown for @account_name on a GitLab project's members page ("" if not found).
    (The misspelt name is WebArena's, as written in its configs.)"""
    script = """(account) => {
        const names = document.querySelectorAll("td[data-label='Account'] span.gl-avatar-labeled-sublabel");
        const index = [...names].findIndex(e => e.outerText === '@' + account);
        if (index < 0) return "";
        const role = document.querySelectorAll("td.col-max-role span")[index];
        return role ? role.outerText : "";
    }"""
    return str(await page.evaluate(script, account_name))


def _needs_magento_api(name: str) -> Helper:
    def helper(*args: Any) -> str:
        raise HelperNotAvailableError(
            f"program_html helper {name!r} reads the Magento REST API of a real WebArena shopping site and "
            f"is not built in; pass helpers={{{name!r}: your_function}} to the evaluator (the local shop "
            "site can register its own)"
        )

    return helper


DEFAULT_HELPERS: dict[str, Helper] = {
    "reddit_get_post_url": reddit_get_post_url,
    "gitlab_get_project_memeber_role": gitlab_get_project_memeber_role,
    "shopping_get_latest_order_url": _needs_magento_api("shopping_get_latest_order_url"),
    "shopping_get_sku_latest_review_author": _needs_magento_api("shopping_get_sku_latest_review_author"),
    "shopping_get_sku_latest_review_rating": _needs_magento_api("shopping_get_sku_latest_review_rating"),
}


async def call_helper(expression: str, page: Any, helpers: Mapping[str, Helper]) -> str:
    """Run `name(args)` from a config's "func:" without eval: args are literals, `__page__` (the page)
    or strings holding `__last_url__` (the page's current URL)."""
    try:
        call = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as exc:
        raise EvaluationError(f"cannot parse program_html helper call {expression!r}: {exc.msg}") from exc
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.keywords:
        raise EvaluationError(f"program_html helper must be a call like name('arg'), got {expression!r}")
    name = call.func.id
    if name not in helpers:
        raise HelperNotAvailableError(
            f"unknown program_html helper {name!r}; known: {', '.join(sorted(helpers))}; pass helpers={{...}}")
    args: list[Any] = []
    for node in call.args:
        if isinstance(node, ast.Name) and node.id in ("__page__", "page"):
            args.append(page)
        elif isinstance(node, ast.Constant):
            value = node.value
            args.append(value.replace("__last_url__", page.url) if isinstance(value, str) else value)
        else:
            raise EvaluationError(f"program_html helper {name!r}: arguments must be literals or __page__, "
                                  f"got {ast.unparse(node)!r}")
    result = helpers[name](*args)
    if inspect.isawaitable(result):
        result = await result
    return str(result)


async def _read_target(target: ProgramHtmlTarget, page: Any, helpers: Mapping[str, Helper],
                       notes: list[str]) -> str:
    locator = target.locator
    if not locator.strip():
        return await page.content()
    if locator.startswith(("document.", "[...document.")):
        # WebArena runs the prep actions in one try block: the first failure skips the rest.
        for action in target.prep_actions:
            try:
                await page.evaluate(f"() => {action}")
            except Exception as exc:
                notes.append(f"prep action failed, later ones skipped: {_first_line(exc)}")
                break
        try:
            value = str(await page.evaluate(f"() => {locator}"))  # str(None) is "None", as in WebArena
        except Exception as exc:  # WebArena: the page is wrong, so the content is empty
            notes.append(f"locator raised, read as empty: {_first_line(exc)}")
            value = ""
        return value or ""
    return await call_helper(locator.removeprefix("func:"), page, helpers)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def evaluate_program_html(ev: EvalConfig, page: Any, helpers: Mapping[str, Helper] | None = None,
                                wait_seconds: float = DEFAULT_PAGE_WAIT_SECONDS) -> EvaluatorResult:
    """For each target: pick the page, read a value from it, html-unescape it, compare it."""
    table = {**DEFAULT_HELPERS, **(helpers or {})}
    checks: list[Check] = []
    score = 1.0
    for i, target in enumerate(ev.program_html):
        notes: list[str] = []
        url = target.url
        if url.startswith("func"):
            url = await call_helper(url.split("func:", 1)[1], page, table)
        if url != "last":
            await page.goto(url)
            if wait_seconds > 0:
                await asyncio.sleep(wait_seconds)
        where = f"[{i}] {'current page' if url == 'last' else url}"
        if target.locator.strip():
            where += f", {target.locator}"
        found = html.unescape(await _read_target(target, page, table, notes))
        shown = _brief(found, 300) if len(found) <= 300 else f"{len(found)} chars: {_brief(found, 300)}"
        if target.exact_match is not None:
            s = exact_match(target.exact_match, found)
            checks.append(Check(f"exact_match {where}", s, repr(clean_answer(target.exact_match)),
                                repr(clean_answer(shown)), "; ".join(notes)))
            score *= s
        else:
            for item in target.must_include or ():
                alternatives = item.split(OR_SEPARATOR)
                s = float(any(must_include(alt, found, tokenize=False) for alt in alternatives))
                checks.append(Check(f"must_include {where}", s,
                                    " or ".join(repr(clean_answer(a)) for a in alternatives) + " in the content",
                                    repr(clean_answer(shown)), "; ".join(notes)))
                score *= s
    return EvaluatorResult("program_html", score, checks)


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
