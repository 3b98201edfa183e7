"""Every part of every prompt stays inside its token budget (issue #18), in real runs through the CLI:
a 200,000-character fill, a model imagining at length, and a page flooding the agent with dialogs
give prompts no bigger than their templates' bounds, cut with a visible marker."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.cli.main import main
from agent.proposer import PROMPTS as AGENT_PROMPTS
from agent.strategies.revise import PROMPT as REVISE_PROMPT
from envs.rendering import DEFAULT_TOKEN_BUDGET
from envs.tokens import count_tokens
from world_model.templates import load_template
from world_model.world_model import PROMPTS as WORLD_MODEL_PROMPTS

WIDGETS = Path(__file__).resolve().parents[1] / "pages" / "widgets.html"
MARKER = " characters]"  # the end of "… [trimmed 12,345 characters]"
# Each call's template, by the title of the answer schema it asked for.
TEMPLATES = {"candidates": AGENT_PROMPTS / "propose.txt", "prediction": WORLD_MODEL_PROMPTS / "predict.txt",
             "next_action": WORLD_MODEL_PROMPTS / "imagined_policy.txt", "verdict": AGENT_PROMPTS / "verify.txt",
             "revision": REVISE_PROMPT}


def proposal(action: str) -> str:
    return json.dumps({"candidates": [{"action": action, "reason": "next"}]})


def run(tmp_path: Path, url: Path | str, script: dict[str, Any], *flags: str) -> list[dict[str, Any]]:
    model = tmp_path / "model.json"
    model.write_text(json.dumps(script))
    assert main(["run", "--url", str(url), "--goal", "Write the comment, then report done.", "--model",
                 f"scripted:{model}", "--no-screenshots", "--out", str(tmp_path / "run"), *flags]) == 0
    events = [json.loads(line) for line in (tmp_path / "run" / Path(url).stem / "trace.jsonl").read_text().splitlines()]
    prompts = {event["hash"]: event["messages"] for event in events if event["type"] == "prompt"}  # each once
    return [{**event, "messages": prompts[event["prompt_hash"]]} for event in events if event["type"] == "llm_call"]


def prompt_text(call: dict[str, Any]) -> str:
    return "\n".join(message["content"] for message in call["messages"])


def assert_within_bounds(calls: list[dict[str, Any]]) -> int:
    """Every prompt within its template's bound (counted again here); the largest prompt's tokens."""
    largest = 0
    for call in calls:
        tokens = sum(count_tokens(message["content"]) for message in call["messages"])
        bound = load_template(TEMPLATES[call["json_schema"]]).token_bound(DEFAULT_TOKEN_BUDGET)
        assert tokens <= bound, f"a {call['role']} prompt of {tokens} tokens, over its bound of {bound}"
        largest = max(largest, tokens)
    return largest


def test_a_200k_character_fill_and_a_long_imagination_stay_within_the_budgets(tmp_path: Path) -> None:
    text = "lorem ipsum dolor sit amet " * 7_500  # 202,500 characters: ~50,000 tokens each time it is shown
    fill = f"fill('e19', '{text}')"
    prediction = json.dumps({"changes": "The comment box holds the text. " * 2_000, "url": "", "appear": [text],
                             "disappear": []})
    calls = run(tmp_path, WIDGETS, {
        "policy": [proposal(fill), proposal("send_msg_to_user('done')"),
                   {"when": "act in imagination", "answer": json.dumps({"action": fill, "reason": "again"}),
                    "repeat": True}],
        "world_model": [{"when": "", "answer": prediction, "repeat": True}],
        "verifier": [{"when": "", "answer": json.dumps({"reason": "fine", "verdict": "on track"}), "repeat": True}],
    }, "--strategy", "dreamer", "-k", "1", "--samples", "1", "--horizon", "2")
    assert {call["json_schema"] for call in calls} == {"candidates", "prediction", "next_action", "verdict"}
    largest = assert_within_bounds(calls)
    assert largest < 8_000  # unbounded, the second proposal alone was over 100,000 tokens

    second_proposal = [prompt_text(c) for c in calls if c["json_schema"] == "candidates"][1]
    history = second_proposal.split("Previous actions:")[1].split("The current page")[0]
    assert history.startswith("\n1. fill('e19', 'lorem") and MARKER in history  # the fill, cut in the middle
    assert "shortened 1 long texts" in second_proposal  # the box's 200,000-character value, on the page
    imagined = [prompt_text(c) for c in calls if c["json_schema"] == "next_action"][0]
    assert imagined.count(MARKER) >= 2  # the imagined fill and its long prediction
    verdict = [prompt_text(c) for c in calls if c["json_schema"] == "verdict"][0]
    assert MARKER in verdict.split("<imagined>")[-1]  # the judged fill, and the predicted change


def test_a_flood_of_dialog_text_stays_within_the_error_budget(tmp_path: Path) -> None:
    page = tmp_path / "notices.html"
    # Six alerts a second, each different and 300 characters long: below a storm's rate, so each is
    # answered and told; over a model's 3-second think, twenty of them.
    page.write_text("""<!doctype html><title>Notices</title><button onclick="let n = 0; setInterval(() =>
        alert('notice ' + n++ + ': ' + 'please read this important message '.repeat(8)), 160)">Start</button>""")
    calls = run(tmp_path, page, {"delay_s": 3.0, "policy": [proposal("click('e1')"), proposal("noop(0)"),
                                                            proposal("send_msg_to_user('done')")]},
                "--strategy", "reactive")
    assert_within_bounds(calls)
    third = prompt_text(calls[2])
    error = third.split("Last action error:")[1].split("\n")[0]
    assert "notice 1:" in error and MARKER in error  # the first notices, the cut, the latest
    assert count_tokens(error) <= 600


def test_a_dialog_storm_leaves_a_short_prompt(tmp_path: Path) -> None:
    page = tmp_path / "storm.html"
    page.write_text("""<!doctype html><title>Storm</title>
        <button onclick="setInterval(() => alert('tick'), 5)">Start</button>""")
    calls = run(tmp_path, page, {"policy": [proposal("click('e1')"), proposal("noop(500)"),
                                            proposal("send_msg_to_user('done')")]}, "--strategy", "reactive")
    largest = assert_within_bounds(calls)
    assert largest < 1_500  # a page alerting every 5 ms grew the prompt to ~9,700 tokens before
    assert "opened dialogs without end" in prompt_text(calls[2])
