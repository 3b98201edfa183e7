"""One of our LLMs as WebArena's fuzzy_match grader (the `envs.webarena.Judge` protocol)."""
from __future__ import annotations

from agent.llm.protocol import LLM, Role, Usage, sum_usage

# WebArena's llm_fuzzy_match sends its prompt with this system message, at temperature 0.
JUDGE_SYSTEM = "You are a helpful assistant"


class LLMJudge:
    """`await judge(prompt) -> reply`, served by `llm` under `role` at temperature 0. Keeps the usage
    of its calls (`usage`), which is the evaluation's, not the agent's, spending."""

    def __init__(self, llm: LLM, role: Role = "verifier") -> None:
        self.llm = llm
        self.role = role
        self.calls: list[Usage] = []

    async def __call__(self, prompt: str) -> str:
        messages = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]
        completions = await self.llm.complete(self.role, messages, temperature=0)
        self.calls.append(sum_usage(c.usage for c in completions))
        return completions[0].text

    @property
    def usage(self) -> Usage:
        return sum_usage(self.calls)
