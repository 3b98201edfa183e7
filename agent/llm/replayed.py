"""A model that answers from a recorded trace (`--model replay:TRACE_DIR`): no network, no key.

A call is matched by role + the hash of its prompt, so concurrent calls get their own answers in
whatever order they arrive; a prompt asked several times gets its recorded answers in order. A
prompt that differs from a recorded one only in clock times, dates and durations (a page's ticking
timer) matches it too, and so does one whose pictures (--vision) differ: the trace holds them by
file, and the page's text says what they show. A question the trace does not hold fails with a
short diff against the nearest recorded prompt.
Usage (tokens, cost) is the recorded one, so budgets stop a replayed run where they stopped the
original; nothing is spent.
"""
from __future__ import annotations

import difflib
import time
from pathlib import Path
from typing import Any

from agent.llm.parsing import extract_json
from agent.llm.protocol import Completion, ConfigError, Role, Usage, check_role
from traces.schema import Trace, TraceError, denoise, map_text, path_map, prompt_hash, read_trace
from world_model.messages import Message, content_text
from world_model.messages import map_text as map_content

DIFF_LINES = 40  # the diff shown for an unknown prompt is cut after this many lines


class ReplayMismatch(ConfigError):
    """The replayed run asked something the trace does not hold: it departed from the recording."""


class ReplayLLM:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.source = str(trace.dir)
        self.paths = path_map(trace.task)  # a trace of file:// pages recorded in another checkout
        self._answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # A page's clock or countdown is in the prompt too: when the exact prompt is not recorded, a
        # prompt that differs from a recorded one only in times, dates and durations gets its answer.
        self._answers_ignoring_clocks: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for call in trace.calls:
            self._answers.setdefault((call["role"], call["prompt_hash"]), []).append(call)
            key = (call["role"], _clock_free_hash(trace.prompts[call["prompt_hash"]]))
            self._answers_ignoring_clocks.setdefault(key, []).append(call)
        self._used: set[int] = set()  # id() of the recorded calls already answered

    @classmethod
    def from_dir(cls, path: str | Path) -> ReplayLLM:
        try:
            return cls(read_trace(path))
        except TraceError as exc:
            raise ConfigError(f"replay model: {exc}") from None

    def _recorded_messages(self, messages: list[Message]) -> list[Message]:
        if not self.paths:
            return messages
        return [{**m, "content": map_content(m.get("content"), lambda text: map_text(text, self.paths, reverse=True))}
                for m in messages]

    async def complete(
        self,
        role: Role,
        messages: list[Message],
        *,
        n: int = 1,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> list[Completion]:
        check_role(role)
        started = time.perf_counter()
        asked = self._recorded_messages(messages)
        key = (role, prompt_hash(asked))
        recorded = self._answers.get(key) or self._answers_ignoring_clocks.get((role, _clock_free_hash(asked)))
        if not recorded:
            raise ReplayMismatch(self._explain_unknown(role, asked))
        call = next((c for c in recorded if id(c) not in self._used), None)
        if call is None:
            raise ReplayMismatch(
                f"replay: the {role} prompt {key[1][:12]} was asked {len(recorded) + 1} times, but {self.source} "
                f"records it {len(recorded)} times: the run has departed from the recorded one"
            )
        self._used.add(id(call))
        if len(call["answers"]) < n:
            raise ReplayMismatch(f"replay: the {role} call asks for {n} answers; {self.source} holds "
                                 f"{len(call['answers'])} for that prompt (was --samples changed?)")
        recorded_usage = call.get("usage", {})
        completions = []
        for index, answer in enumerate(call["answers"][:n]):
            answer = map_text(answer, self.paths)
            usage = Usage(
                prompt_tokens=recorded_usage.get("prompt_tokens", 0) if index == 0 else 0,
                completion_tokens=recorded_usage.get("completion_tokens", 0) if index == 0 else 0,
                cached_tokens=recorded_usage.get("cached_tokens", 0) if index == 0 else 0,
                cost_usd=recorded_usage.get("cost_usd", 0.0) if index == 0 else 0.0,
                latency_s=time.perf_counter() - started if index == 0 else 0.0,
            )
            data = extract_json(answer) if json_schema is not None else None
            probs = (call.get("answer_probs") or [])[index:index + 1]
            completions.append(Completion(text=answer, role=role, model=call.get("model", "replay"),
                                          usage=usage, data=data, choice_probs=probs[0] if probs else None))
        return completions

    def _explain_unknown(self, role: str, asked: list[Message]) -> str:
        text = _as_text(asked)
        known = {call["prompt_hash"]: call for call in self.trace.calls if call["role"] == role}
        head = f"replay: {self.source} holds no {role} answer for this prompt (hash {prompt_hash(asked)[:12]})"
        if not known:
            return f"{head}, and no {role} calls at all: was it recorded with another strategy?"
        candidates = {h: _as_text(self.trace.prompts[h]) for h in known}
        # quick_ratio is a cheap upper bound; the exact ratio is computed for the few best only.
        best = sorted(candidates, key=lambda h: difflib.SequenceMatcher(None, candidates[h], text).quick_ratio(),
                      reverse=True)[:5]
        nearest = max(best, key=lambda h: difflib.SequenceMatcher(None, candidates[h], text).ratio())
        diff = list(difflib.unified_diff(candidates[nearest].splitlines(), text.splitlines(),
                                         f"recorded (step {known[nearest].get('step')}, hash {nearest[:12]})",
                                         "asked now", n=1, lineterm=""))
        if len(diff) > DIFF_LINES:
            diff = diff[:DIFF_LINES] + [f"... ({len(diff) - DIFF_LINES} more diff lines)"]
        return (f"{head}. The run has departed from the recorded one (a changed page, prompt or setting). "
                f"How it differs from the nearest recorded {role} prompt:\n" + "\n".join(diff))


def _clock_free_hash(messages: list[Message]) -> str:
    """The hash of `messages` with clock times denoised and each picture reduced to where it stands."""
    clock_free = [{"role": str(m.get("role")), "content": _picture_free(map_content(m.get("content"), denoise))}
                  for m in messages]
    return prompt_hash(clock_free)


def _picture_free(content: Any) -> Any:
    if isinstance(content, list):
        return [{"type": "image_url"} if isinstance(p, dict) and p.get("type") == "image_url" else p for p in content]
    return content


def _as_text(messages: list[Message]) -> str:
    return "\n".join(f"[{m.get('role')}]\n{content_text(m.get('content'))}" for m in messages)
