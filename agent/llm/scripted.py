r"""A deterministic LLM that replays scripted answers per role — for tests, demos and users' own tests.

Script format (a JSON file for `scripted:FILE`, or the same shape as a dict; README's "The scripted
model" has a worked example):

    {"policy": ["{\"candidates\": [{\"action\": \"click('e3')\", \"reason\": \"...\"}]}"],
     "world_model": [{"when": "Action: click('e3')", "answer": "{\"changes\": \"...\", ...}", "repeat": true}],
     "verifier": [{"when": "Predicted outcome: ...", "answer": "{\"verdict\": \"complete\", ...}", "repeat": true}],
     "delay_s": 0.5}

Each role ("policy", "world_model", "verifier"; one the run never calls may be left out) has a list of
answers, each the text the model would send back. An entry is
- a string (or `{"answer": ...}`): the next answer in order for its role;
- `{"when": TEXT, "answer": ...}`: the answer to a call whose last user message contains TEXT (in its
  text: a --vision picture beside it is not matched), used once; entries with the same TEXT are used
  in the order written. `when` entries are tried before the ordered ones, so answers do not depend on
  the order concurrent calls arrive in;
- `{"when": TEXT, "answer": ..., "repeat": true}`: the answer to every such call.
A call for n answers (the verifier's `--samples`) takes n of them, so a verifier entry with `repeat`
serves any number of samples. What to match: a world-model prompt ends with `Action: ACTION`; a
verifier prompt holds `Action: ACTION (on: ELEMENT)` and `Predicted outcome: CHANGES` (the world
model's `changes`), which tells apart the same action at different steps. The optional top-level
"delay_s" makes every call take that long (to simulate a slow model). A call no entry answers raises
ScriptExhausted, which ends a run with stop reason llm_error.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.llm.parsing import extract_json
from agent.llm.pricing import prompt_tokens
from agent.llm.protocol import ROLES, Completion, ConfigError, Role, Usage, check_role, last_user_message
from envs.tokens import count_tokens
from world_model.messages import Message


class ScriptExhausted(RuntimeError):
    """The script has no answer left for a call."""


@dataclass
class _WhenEntry:
    when: str
    answer: str
    repeat: bool = False
    used: bool = False


class ScriptedLLM:
    """Replays the answers of a script; simulated usage (real token counts, ~0 latency, cost 0)."""

    def __init__(self, script: Mapping[str, Any], *, model: str = "scripted", delay_s: float = 0.0,
                 source: str = "the script") -> None:
        self.model = model
        self.delay_s = delay_s
        self.source = source
        self._ordered: dict[Role, list[str]] = {role: [] for role in ROLES}
        self._when: dict[Role, list[_WhenEntry]] = {role: [] for role in ROLES}
        self._next: dict[Role, int] = {role: 0 for role in ROLES}
        self._used: dict[Role, int] = {role: 0 for role in ROLES}
        self._load(script)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> ScriptedLLM:
        path = Path(path)
        try:
            script = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"scripted model file not found: {path}") from None
        except ValueError as exc:
            raise ConfigError(f"scripted model file {path} is not valid JSON: {exc}") from None
        kwargs.setdefault("model", f"scripted:{path.name}")
        if isinstance(script, dict) and "delay_s" in script:  # simulated latency per call
            delay = script.pop("delay_s")
            if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
                raise ConfigError(f"{path}: 'delay_s' must be a number of seconds >= 0, got {delay!r}")
            kwargs.setdefault("delay_s", float(delay))
        return cls(script, source=str(path), **kwargs)

    def _load(self, script: Mapping[str, Any]) -> None:
        if not isinstance(script, Mapping):
            raise ConfigError(f"{self.source}: a script is an object of answer lists per role ({', '.join(ROLES)})")
        for role, entries in script.items():
            if role not in ROLES:
                raise ConfigError(f"{self.source}: unknown role {role!r}; roles are {', '.join(ROLES)}")
            if not isinstance(entries, list):
                raise ConfigError(f"{self.source}: {role!r} must be a list of answers")
            for index, entry in enumerate(entries):
                if isinstance(entry, str):
                    self._ordered[role].append(entry)
                elif isinstance(entry, Mapping) and isinstance(entry.get("answer"), str):
                    if "when" in entry:
                        self._when[role].append(
                            _WhenEntry(str(entry["when"]), entry["answer"], bool(entry.get("repeat", False)))
                        )
                    else:
                        self._ordered[role].append(entry["answer"])
                else:
                    raise ConfigError(
                        f"{self.source}: {role}[{index}] must be a string or "
                        '{"when": "...", "answer": "...", "repeat": false}'
                    )

    def used(self, role: Role) -> int:
        """How many answers `role` has been given so far."""
        return self._used[role]

    def remaining(self, role: Role) -> int:
        """Ordered answers still unused for `role` (`when` entries not counted)."""
        return len(self._ordered[role]) - self._next[role]

    def skip_answered(self, calls: Iterable[tuple[Role, list[Message], int]]) -> None:
        """Consume the answers a resumed run's finished steps were given: (role, messages, n) per call,
        in order, so the next call gets the answer it would have got without the interruption."""
        for role, messages, n in calls:
            for _ in range(n):
                self._next_answer(role, last_user_message(messages))
                self._used[role] += 1

    def _next_answer(self, role: Role, prompt: str) -> str:
        for entry in self._when[role]:
            if (entry.repeat or not entry.used) and entry.when in prompt:
                entry.used = True
                return entry.answer
        if self._next[role] >= len(self._ordered[role]):
            raise ScriptExhausted(
                f"scripted model has no answer left for role {role!r} after {self._used[role]} answers "
                f"({len(self._ordered[role])} in order, {len(self._when[role])} 'when' entries, none matched); "
                f"add answers to {role!r} in {self.source}"
            )
        answer = self._ordered[role][self._next[role]]
        self._next[role] += 1
        return answer

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
        prompt = last_user_message(messages)
        # Take all answers before awaiting, so concurrent calls cannot interleave within one call.
        answers = []
        for _ in range(n):
            answers.append(self._next_answer(role, prompt))
            self._used[role] += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        latency = time.perf_counter() - started
        counted = prompt_tokens(messages)  # pictures too, as an OpenAI endpoint counts them
        completions = []
        for index, answer in enumerate(answers):
            usage = Usage(
                prompt_tokens=counted if index == 0 else 0,
                completion_tokens=count_tokens(answer),
                latency_s=latency if index == 0 else 0.0,
            )
            data = extract_json(answer) if json_schema is not None else None
            completions.append(Completion(text=answer, role=role, model=self.model, usage=usage, data=data))
        return completions
