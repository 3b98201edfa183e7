"""lookahead: reversible candidates are tried for real in a forked context, the main page only ever sees
the chosen action, irreversible candidates and server writes are only imagined."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import PlannerConfig
from agent.llm.scripted import ScriptedLLM
from agent.loop import run_task
from agent.strategies.lookahead import REAL, REAL_NOTE, look_ahead, lookahead_allowed
from envs.env import BrowserEnv
from envs.tasks import UrlTask
from tests.agent.answers import candidates
from tests.pages.page_server import PageServer

COUNTER_PAGE = """<!doctype html>
<html><head><title>Click counter</title></head><body>
<p id="status">Nothing clicked yet.</p>
<button onclick="count('Alpha')">Alpha</button>
<button onclick="count('Beta')">Beta</button>
<button onclick="count('Gamma')">Gamma</button>
<button onclick="count('Delete')">Delete everything</button>
<script>
  window.clicks = {Alpha: 0, Beta: 0, Gamma: 0, Delete: 0};
  function count(name) {
    window.clicks[name] += 1;
    document.getElementById('status').textContent = name + ' clicked ' + window.clicks[name] + ' times';
  }
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "counter.html"
    path.write_text(COUNTER_PAGE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def buttons(env: BrowserEnv, page_path: Path) -> dict[str, str]:
    obs, _ = await env.reset(UrlTask("ids", str(page_path), ""))
    return {e.name.split()[0]: f"click('{e.id}')" for e in obs.elements if e.role == "button"}


def verdict(word: str) -> str:
    return json.dumps({"reason": f"looks {word}", "verdict": word})


def test_real_lookahead_is_allowed_on_file_pages_and_local_sites_only_unless_any_origin() -> None:
    assert lookahead_allowed("file:///tmp/page.html")
    assert lookahead_allowed("http://127.0.0.1:8080/shop")
    assert lookahead_allowed("http://localhost/")
    assert not lookahead_allowed("https://example.com/")
    assert not lookahead_allowed("http://127.0.0.1.example.com/")
    assert lookahead_allowed("https://example.com/", any_origin=True)


async def test_lookahead_tries_safe_candidates_in_a_fork_and_the_main_page_sees_only_the_chosen_ones(
    env: BrowserEnv, page_path: Path, buttons: dict[str, str], tmp_path: Path
) -> None:
    alpha, beta, gamma, delete = buttons["Alpha"], buttons["Beta"], buttons["Gamma"], buttons["Delete"]
    llm = ScriptedLLM({
        "policy": [candidates(alpha, beta, delete), candidates(gamma, alpha)],
        # Only the irreversible candidate is imagined: any other world-model call would exhaust the script.
        "world_model": [{"when": f"Action: {delete}",
                         "answer": json.dumps({"changes": "everything is deleted", "url": "", "appear": [],
                                               "disappear": []})}],
        "verifier": [
            {"when": "appeared: text 'Beta clicked 1 times'", "answer": verdict("on track")},
            {"when": "appeared: text 'Alpha clicked 1 times'", "answer": verdict("wrong"), "repeat": True},
            {"when": "everything is deleted", "answer": verdict("wrong")},
            # Step 2: Gamma's real outcome shows on a page the fork had to rebuild by replaying Beta.
            {"when": "appeared: text 'Gamma clicked 1 times'", "answer": verdict("complete")},
        ],
    })
    result = await run_task(UrlTask("counter", str(page_path), "Click Beta, then Gamma."), llm, env,
                            PlannerConfig(strategy="lookahead", k=3, samples=1, max_steps=2), tmp_path,
                            on_step=lambda _: None)
    first, second = [json.loads(line) for line in
                     (tmp_path / "counter" / "steps.jsonl").read_text(encoding="utf-8").splitlines()]

    # Each fork clicked its own candidate (and step 2's forks replayed Beta); the main page saw only the choices.
    assert env.session.page is not None
    assert await env.session.page.evaluate("window.clicks") == {"Alpha": 0, "Beta": 1, "Gamma": 1, "Delete": 0}
    assert len(env.session.browser.contexts) == 1  # every fork was closed
    assert first["mode"] == "lookahead" and first["choice"] == beta and second["choice"] == gamma
    assert first["lookahead"][alpha] == REAL and first["lookahead"][beta] == REAL
    assert first["lookahead"][delete].startswith("imagined: irreversible (click on button 'Delete everything'")
    assert second["lookahead"] == {gamma: REAL, alpha: REAL}
    real_beta = first["imagined"][beta][0]
    assert real_beta["note"] == REAL_NOTE and "text 'Beta clicked 1 times'" in real_beta["prediction"]["appear"]
    assert "text 'Nothing clicked yet.'" in real_beta["prediction"]["disappear"]
    # Step 2's fork rebuilt the page by replaying Beta: Gamma's real outcome replaces Beta's status line.
    assert second["imagined"][gamma][0]["prediction"]["disappear"] == ["text 'Beta clicked 1 times'"]
    assert first["imagined"][delete][0]["prediction"]["description"] == "everything is deleted"
    assert second["surprise"]["score"] == 0.0  # the fork predicted the main page's outcome exactly
    assert result.usage["calls"] == (1 + 1 + 3) + (1 + 0 + 2)


# ----------------------------------------------------------------------------- server writes


SHOP_PAGE = """<!doctype html><title>Shop</title><p>Saved drafts</p><a href='/about'>About</a>
<form method='post' action='/save'><button>Save draft</button></form>"""


@pytest.fixture(scope="module")
def shop_site() -> Iterator[PageServer]:
    server = PageServer({"/": SHOP_PAGE})
    yield server
    server.close()


@pytest.fixture
def shop(shop_site: PageServer) -> str:
    shop_site.posts.clear()
    return f"{shop_site.url}/"


async def test_a_candidate_that_would_write_to_the_server_is_held_back_in_the_fork_and_imagined(
    env: BrowserEnv, shop: str, shop_site: PageServer
) -> None:
    obs, _ = await env.reset(UrlTask("shop", shop, "Look around."))
    ids = {e.name: e.id for e in obs.elements if e.id}
    save, about = f"click('{ids['Save draft']}')", f"click('{ids['About']}')"

    tried = await look_ahead(env, obs, [], [save, about])

    assert shop_site.posts == []  # the server never saw the fork's form submission
    assert tried.how[about] == REAL and tried.real[about][0].prediction.url == shop + "about"
    assert tried.how[save].startswith(f"imagined: it sends POST {shop}save") and save not in tried.real
    assert env.session.page is not None and env.session.page.url == shop  # the main page stayed where it was


async def test_nothing_is_tried_for_real_on_an_origin_that_does_not_allow_it(env: BrowserEnv, shop: str) -> None:
    obs, _ = await env.reset(UrlTask("shop", shop, "Look around."))
    about = next(f"click('{e.id}')" for e in obs.elements if e.name == "About")
    remote = obs.__class__(**{**obs.__dict__, "url": "https://shop.example.com/"})

    tried = await look_ahead(env, remote, [], [about])

    assert tried.real == {} and tried.how[about].startswith("imagined: real lookahead is off for https://shop.example.com/")
