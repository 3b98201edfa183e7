"""What a WebArena evaluation reports (Check, EvaluatorResult, Evaluation, EvaluationError) and the
string comparisons every evaluator uses, with WebArena's exact semantics (quirks included):
clean_answer, exact_match, must_include and its tokenizer."""
from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field
from typing import Any


class EvaluationError(RuntimeError):
    """The evaluation itself could not be carried out (as opposed to the agent failing it)."""


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


def brief(text: str, limit: int = 160) -> str:
    """`text` on one line, cut to `limit` characters, for a check's explanation."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
