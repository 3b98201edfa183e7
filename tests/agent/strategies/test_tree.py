"""tree: best-first search in the real environment. Every node is tried in a fresh fork that replays
the task's start URL, the real history and the node's path; the first action of the best REAL path
runs; the main page only ever sees the chosen action; on a local site the search resets the site and
leaves it as the real history made it; off local origins nothing is tried for real."""
from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import STRATEGIES, PlannerConfig, StepPlan
from agent.graph import Parts
from agent.llm.scripted import ScriptedLLM
from agent.loop import run_task
from agent.strategies.lookahead import REAL, REAL_NOTE
from agent.strategies.tree import tree_search
from agent.verifier import LLMVerifier
from envs.env import BrowserEnv
from envs.rendering import render_text
from envs.suites import LocalSites, load_local_suite
from envs.tasks import UrlTask
from tests.agent.answers import candidates
from tests.pages.page_server import PageServer
from world_model.world_model import LLMWorldModel

# A maze whose state lives in the page's script: where Dig leads depends on the rooms entered before.
MAZE_PAGE = """<!doctype html>
<html><head><title>Maze</title></head><body>
<p id="where">At the entrance.</p>
<button onclick="enter('Left')">Left</button>
<button onclick="enter('Right')">Right</button>
<button onclick="dig()">Dig</button>
<form method="post" action="/save"><button>Save progress</button></form>
<script>
  window.moves = [];
  const say = (text) => { document.getElementById('where').textContent = text; };
  function enter(room) { window.moves.push(room); say('In the ' + room + ' room.'); }
  function dig() {
    window.moves.push('Dig');
    const room = window.moves[window.moves.length - 2];
    say(room === 'Left' ? 'Treasure found!' : room === 'Right' ? 'Only sand here.' : 'Nothing to dig here.');
  }
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def maze() -> Iterator[PageServer]:
    server = PageServer({"/": MAZE_PAGE})
    yield server
    server.close()


@pytest.fixture
async def buttons(env: BrowserEnv, maze: PageServer) -> dict[str, str]:
    obs, _ = await env.reset(UrlTask("ids", f"{maze.url}/", ""))
    maze.hits.clear()
    maze.posts.clear()
    return {e.name.split()[0]: f"click('{e.id}')" for e in obs.elements if e.role == "button"}


async def moves(env: BrowserEnv) -> list[str]:
    """The maze moves the main page has made."""
    page = env.session.page
    assert page is not None
    return await page.evaluate("window.moves")


def verdict(word: str) -> str:
    return json.dumps({"reason": f"looks {word}", "verdict": word})


def judged(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    """Verifier answers by what the real outcome shows (the first match wins, so specific ones first)."""
    return [{"when": text, "answer": verdict(word), "repeat": True} for text, word in pairs]


def test_tree_is_a_strategy_searching_two_levels_deep_by_default_with_a_budget_of_expansions() -> None:
    assert "tree" in STRATEGIES
    config = PlannerConfig(strategy="tree", k=4, samples=2)
    assert config.step_plan() == StepPlan("tree", k=4, horizon=2, samples=2) and config.tree_expansions == 3
    deeper = PlannerConfig(strategy="tree", horizon=4).step_plan()
    assert deeper is not None and deeper.horizon == 4
    with pytest.raises(ValueError, match="tree_expansions must be at least 1, got 0"):
        PlannerConfig(strategy="tree", tree_expansions=0)


async def test_tree_backtracks_by_replay_and_runs_the_first_action_of_the_best_real_path(
    env: BrowserEnv, maze: PageServer, buttons: dict[str, str], tmp_path: Path
) -> None:
    left, right, dig = buttons["Left"], buttons["Right"], buttons["Dig"]
    give_up = "send_msg_to_user('There is no treasure.')"
    llm = ScriptedLLM({
        # The root's proposal, then one proposal per expansion, on the node's real page.
        "policy": [candidates(left, right), candidates(dig, give_up), candidates(dig)],
        # Only the answer is imagined, from the real page its parent reached (the script answers nothing else).
        "world_model": [{"when": "In the Right room.", "answer": json.dumps(
            {"changes": "the agent gives up", "url": "", "appear": [], "disappear": []})}],
        "verifier": judged(("Treasure found!", "complete"), ("Only sand here.", "wrong"),
                           ("the agent gives up", "wrong"), ("In the Right room.", "on track"),
                           ("In the Left room.", "wrong")),
    })
    result = await run_task(UrlTask("maze", f"{maze.url}/", "Find the treasure."), llm, env,
                            PlannerConfig(strategy="tree", k=2, samples=1, max_steps=1), tmp_path,
                            on_step=lambda _: None)
    [step] = [json.loads(line) for line in (tmp_path / "maze" / "steps.jsonl").read_text(encoding="utf-8").splitlines()]

    # Best first: Right (on track) grew first and dead-ended; the search backtracked to Left, whose real
    # child finds the treasure. Each depth-2 node replayed its parent's action in its own fresh fork.
    tried = [(n["actions"], n["value"], n["replayed"], n["how"]) for n in step["search"]]
    assert tried == [([left], 0.0, 0, REAL), ([right], 0.5, 0, REAL), ([right, dig], 0.0, 1, REAL),
                     ([right, give_up], 0.0, 0, "imagined: it answers the user; there is no page change to try"),
                     ([left, dig], 1.0, 1, REAL)]
    assert [n["expanded"] for n in step["search"]] == [True, True, False, False, False]
    assert step["mode"] == "tree" and step["choice"] == left  # though Right scored better at depth 1
    assert step["scores"][left]["value"] == 1.0 and step["scores"][right]["value"] == 0.5
    best_path = step["imagined"][left]
    assert [s["action"] for s in best_path] == [left, dig] and all(s["note"] == REAL_NOTE for s in best_path)
    # Dig finds the treasure only after Left: the fork really replayed the prefix before digging.
    assert "text 'Treasure found!'" in best_path[1]["prediction"]["appear"]
    assert step["lookahead"] == {left: REAL, right: REAL}
    assert [n["best"] for n in step["search"]] == [False, True, False, False, True]  # the best node per candidate

    # One fresh fork (one load of the start URL) per node tried for real, plus the main page's own load;
    # the main page saw only the chosen action, and every fork was closed.
    assert (maze.hits, maze.posts) == (["/"] * 5, [])
    assert await moves(env) == ["Left"]
    assert len(env.session.browser.contexts) == 1
    assert step["surprise"]["score"] == 0.0  # the real path's first step is what the main page then did
    assert result.usage["calls"] == 3 + 1 + 5  # proposals, the imagined answer, verdicts


async def test_tree_replays_the_real_history_and_holds_back_writes_to_a_server_it_cannot_reset(
    env: BrowserEnv, maze: PageServer, buttons: dict[str, str], tmp_path: Path
) -> None:
    left, dig, save = buttons["Left"], buttons["Dig"], buttons["Save"]
    llm = ScriptedLLM({
        "policy": [candidates(left), candidates(save, dig)],
        "world_model": [{"when": f"Action: {save}", "answer": json.dumps(
            {"changes": "progress is saved", "url": "", "appear": [], "disappear": []})}],
        "verifier": judged(("Treasure found!", "complete"), ("progress is saved", "on track"),
                           ("In the Left room.", "on track")),
    })
    await run_task(UrlTask("maze", f"{maze.url}/", "Find the treasure."), llm, env,
                   PlannerConfig(strategy="tree", k=2, horizon=1, samples=1, max_steps=2), tmp_path,
                   on_step=lambda _: None)
    first, second = [json.loads(line) for line in
                     (tmp_path / "maze" / "steps.jsonl").read_text(encoding="utf-8").splitlines()]

    assert first["choice"] == left and second["choice"] == dig
    # Step 2's fork replayed the real history (Left) before digging: only then is there treasure.
    assert [(n["actions"], n["replayed"]) for n in second["search"]] == [([save], 0), ([dig], 1)]
    assert "text 'Treasure found!'" in second["imagined"][dig][0]["prediction"]["appear"]
    # The form post never reached the server: the fork held it back and the candidate was imagined.
    assert second["lookahead"][save].startswith(f"imagined: it sends POST {maze.url}/save")
    assert second["imagined"][save][0]["prediction"]["description"] == "progress is saved"
    assert maze.posts == []
    assert await moves(env) == ["Left", "Dig"]


async def test_nothing_is_tried_for_real_off_local_origins_the_candidates_are_imagined(
    env: BrowserEnv, maze: PageServer, buttons: dict[str, str]
) -> None:
    obs, _ = await env.reset(UrlTask("maze", f"{maze.url}/", "Find the treasure."))
    maze.hits.clear()
    maze.posts.clear()
    remote = dataclasses.replace(obs, url="https://maze.example.com/")
    left, right = buttons["Left"], buttons["Right"]
    llm = ScriptedLLM({
        "world_model": [{"when": f"Action: {a}", "answer": json.dumps(
            {"changes": f"imagined {a}", "url": "", "appear": [], "disappear": []})} for a in (left, right)],
        "verifier": judged((f"imagined {right}", "on track"), (f"imagined {left}", "wrong")),
    })
    parts = Parts(env, llm, LLMWorldModel(llm), LLMVerifier(llm, samples=1),
                  PlannerConfig(strategy="tree", k=2, samples=1))
    plan = parts.config.step_plan()
    assert plan is not None
    found = await tree_search(parts, "Find the treasure.", remote, render_text(remote), [], [left, right], plan)

    assert (maze.hits, maze.posts) == ([], [])  # no fork loaded anything
    why = "imagined: real lookahead is off for https://maze.example.com/"
    assert all(how.startswith(why) for how in found.how.values()) and len(found.how) == 2
    assert found.scores[right].value == 0.5 and found.scores[left].value == 0.0
    assert [n["expanded"] for n in found.nodes] == [False, False]  # imagined nodes do not grow
    assert await moves(env) == []


# ------------------------------------------------------------------------------- a local site


@pytest.fixture(scope="module")
def shop() -> Iterator[LocalSites]:
    with LocalSites(["shop"]) as sites:
        yield sites


async def test_on_a_local_site_tree_tries_writes_for_real_then_leaves_the_site_as_the_real_history_made_it(
    env: BrowserEnv, shop: LocalSites, tmp_path: Path
) -> None:
    # "Add 2 Trailhead Lite Camping Tent, Two-Person to my cart", signed in, from the tent's page.
    config = next(c for c in load_local_suite(shop.site_urls) if str(c.task_id) == "local.shop.20")
    base = shop.site_urls["shopping"]
    config = dataclasses.replace(config, start_urls=(f"{base}/product/64",))
    obs, _ = await env.reset(shop.task(config))
    ids = {e.name: e.id for e in obs.elements if e.id}
    add, quantity, cart = f"click('{ids['Add to Cart']}')", f"fill('{ids['Qty']}', '2')", f"goto('{base}/cart')"
    llm = ScriptedLLM({
        "policy": [candidates(add), candidates(quantity, cart)],
        "verifier": judged((f"({base}/cart)", "complete"), ("You added Trailhead Lite Camping Tent", "on track"),
                           ("spinbutton 'Qty' value='2'", "on track")),
    })
    await run_task(shop.task(config), llm, env, PlannerConfig(strategy="tree", k=2, horizon=1, samples=1, max_steps=2),
                   tmp_path, on_step=lambda _: None)
    first, second = [json.loads(line) for line in
                     (tmp_path / str(config.task_id) / "steps.jsonl").read_text(encoding="utf-8").splitlines()]

    # Step 1 added the tent in a fork, on the server (a reset site takes writes), and reset it afterwards.
    assert first["choice"] == add and first["lookahead"] == {add: REAL}
    assert "text 'You added Trailhead Lite Camping Tent, Two-Person to your shopping cart.'" in \
        first["imagined"][add][0]["prediction"]["appear"]
    assert first["search"][-1] == {"restore": "the site was reset to pristine, as the task started"}
    # Step 2's forks reset the site and replayed the real add: the cart page shows the tent only because of it.
    assert second["choice"] == cart and [(n["actions"], n["replayed"], n["how"]) for n in second["search"][:-1]] == \
        [([quantity], 1, REAL), ([cart], 1, REAL)]
    assert any("Trailhead Lite Camping Tent" in line for line in second["imagined"][cart][0]["prediction"]["appear"])
    assert second["search"][-1] == {"restore": "the site was reset and the 1 real actions replayed; the page matches"}
    # The server holds exactly what the main run did: one tent, added once (a fork's add that outlived its
    # search, or a replay without a reset, would make it 2; a reset without the replay, none).
    db_path = shop.server("shop").db_path
    assert db_path is not None
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT quantity FROM cart_items WHERE product_id = 64").fetchall() == [(1,)]
    assert env.session.page is not None and env.session.page.url == f"{base}/cart"
