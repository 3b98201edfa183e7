"""`forethought mcp`, driven as an MCP host drives it: the `mcp` client starts the server over stdio with a
scripted model, opens a local page, imagines, plans and acts on it, is refused a URL of another origin,
runs a task, and finds every call in a trace that `forethought replay` replays. Errors a caller can meet
are the call's error in one sentence, and the server goes on."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters, stdio_client

from agent.cli.main import main
from tests.agent.answers import candidates
from tests.pages.page_server import PageServer
from traces.replay import replay_actions
from traces.schema import read_trace

ROOT = Path(__file__).resolve().parents[2]
COUPON = "SAVE-4242-forethought-secret"
SHOP = """<title>Shop</title>
<button onclick="document.getElementById('status').textContent = '1 item in the cart'">Add to cart</button>
<p id="status">The cart is empty</p>
<label>Coupon <input id="coupon"></label>"""


def prediction(changes: str, appear: tuple[str, ...] = (), disappear: tuple[str, ...] = ()) -> str:
    return json.dumps({"changes": changes, "url": "", "appear": list(appear), "disappear": list(disappear)})


def answers_for(action: str, changes: str, verdict: str, **more: tuple[str, ...]) -> dict[str, list[Any]]:
    """The world model's prediction and the verifier's verdict for `action`, whenever it is asked."""
    return {"world_model": [{"when": f"Action: {action}", "answer": prediction(changes, **more), "repeat": True}],
            "verifier": [{"when": f"Action: {action}", "answer": json.dumps({"reason": verdict, "verdict": verdict}),
                          "repeat": True}]}


def script() -> dict[str, list[Any]]:
    # plan_step's proposal puts the useless scroll first (the greedy one); run_task's two steps add and answer.
    parts = [answers_for("click('e1')", "The cart shows 1 item", "complete", appear=("1 item in the cart",),
                         disappear=("The cart is empty",)),
             answers_for("scroll(0, 300)", "Nothing changes", "wrong"),
             answers_for("send_msg_to_user('added')", "The task ends", "complete")]
    return {"policy": [candidates("scroll(0, 300)", "click('e1')"), candidates("click('e1')"),
                       candidates("send_msg_to_user('added')")],
            "world_model": [entry for part in parts for entry in part["world_model"]],
            "verifier": [entry for part in parts for entry in part["verifier"]]}


@pytest.fixture
def sites() -> Any:
    shop, attacker = PageServer({"/": SHOP}), PageServer()
    yield shop, attacker
    shop.close()
    attacker.close()


async def call(client: Client, tool: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, f"{tool}: {text}"
    return text, result.structured_content or {}


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text  # one sentence
    return text


@asynccontextmanager
async def mcp_client(tmp_path: Path, out: Path) -> AsyncIterator[Client]:
    model = tmp_path / "model.json"
    model.write_text(json.dumps(script()))
    # An MCP host starts the server with a bare environment (mcp's default: PATH, HOME, ...), plus what it names.
    env = {k: v for k, v in os.environ.items() if k.startswith("FORETHOUGHT_")}
    server = StdioServerParameters(command=sys.executable, cwd=ROOT, env=env, args=[
        "-m", "agent.cli", "mcp", "--model", f"scripted:{model}", "--out", str(out), "-k", "2", "--samples", "1",
        "--secret", f"coupon={COUPON}"])
    with open(tmp_path / "server.log", "w") as log:
        async with Client(stdio_client(server, errlog=log), read_timeout_seconds=120) as client:
            yield client


async def test_the_mcp_server_imagines_plans_and_acts_on_a_guarded_page_and_records_every_call(
        tmp_path: Path, sites: tuple[PageServer, PageServer]) -> None:
    shop, attacker = sites
    out = tmp_path / "out"
    async with mcp_client(tmp_path, out) as client:
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == {"open", "observe", "act", "imagine", "plan_step", "run_task"}
        assert "no page is open" in await refused(client, "observe")

        text, _ = await call(client, "open", url=shop.url + "/", goal="Add the item to the cart")
        assert "[e1] button 'Add to cart'" in text and "The cart is empty" in text
        page, _ = await call(client, "observe")
        assert page.startswith("Goal: Add the item to the cart\n") and "The cart is empty" in page

        # imagine: the world model's prediction comes back, and the page is as it was.
        text, data = await call(client, "imagine", action="click('e1')")
        assert data["imagined"][0]["prediction"]["description"] == "The cart shows 1 item"
        assert "The cart shows 1 item" in text
        assert (await call(client, "observe"))[0] == page

        # plan_step: ranked by the verifier's scores (the click overrules the greedy scroll), nothing run.
        text, plan = await call(client, "plan_step")
        assert [(c["action"], c["score"]) for c in plan["candidates"]] == [("click('e1')", 1.0),
                                                                          ("scroll(0, 300)", 0.0)]
        assert plan["choice"] == "click('e1')" and plan["candidates"][0]["imagined"][0]["prediction"]["description"]
        assert (await call(client, "observe"))[0] == page

        # act: the page changes; it was imagined first, so the reply says how surprising the outcome was.
        text, data = await call(client, "act", action="click('e1')")
        assert "1 item in the cart" in text and data["surprise"] == 0.0

        error = await refused(client, "act", action=f"goto('{attacker.url}/steal')")
        assert "was blocked" in error and "outside this task's allowed origins" in error
        assert attacker.hits == []
        assert "no element 'e99'" in await refused(client, "act", action="click('e99')")
        assert "no answer left for role 'world_model'" in await refused(client, "imagine", action="go_back()")

        text, _ = await call(client, "act", action="fill('e2', '{{coupon}}')")
        assert "{{coupon}}" in text and COUPON not in text

        # run_task: the agent on its own, in a browser of its own; the session's page stays as it was.
        page, _ = await call(client, "observe")
        text, result = await call(client, "run_task", goal="Add the item to the cart")
        assert result["answer"] == "added" and result["stop_reason"] == "answer" and result["steps"] == 2
        assert (await call(client, "observe"))[0] == page
        assert "unknown MiniWoB++ task" in await refused(client, "run_task", goal="x", url="miniwob:no-such-task")

    [session_dir] = [p for p in (out / "session-1").iterdir() if p.is_dir()]  # beside its run.json
    trace = read_trace(session_dir)
    assert [s["tool"] for s in trace.steps] == ["observe", "imagine", "observe", "plan_step", "observe", "act", "act",
                                                 "act", "imagine", "act", "observe", "observe"]
    imagined = trace.steps[1]
    assert imagined["choice"] is None and imagined["imagined"]["click('e1')"][0]["prediction"]["description"]
    assert [c["role"] for c in trace.calls if c["step"] == imagined["step"]] == ["world_model"]
    planned = trace.steps[3]
    assert {c["role"] for c in trace.calls if c["step"] == planned["step"]} == {"policy", "world_model", "verifier"}
    click, goto = trace.steps[5], trace.steps[6]
    assert click["choice"] == "click('e1')" and click["surprise"]["score"] == 0.0
    assert "1 item in the cart" in [e.name for e in trace.observation(click["after"]).elements]
    assert "was blocked" in goto["error"]
    assert "no answer left" in trace.steps[8]["error"]
    assert trace.end is not None and trace.end["stop_reason"] == "session_ended"
    assert json.loads((session_dir / "result.json").read_text())["blocked_urls"] == [f"{attacker.url}/steal"]
    [run_trace] = (out / "run-1").glob("*/trace.jsonl")
    assert read_trace(run_trace).end["answer"] == "added"  # type: ignore[index]
    assert not [p for p in out.rglob("*") if p.is_file() and COUPON.encode() in p.read_bytes()]

    # The session's trace is a trace like a run's: its actions replay in a fresh browser, state by state.
    replayed = await replay_actions(session_dir)
    assert replayed.matched and replayed.checked == 5, replayed.divergence


def test_without_the_mcp_package_the_command_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name in ["mcp", *(name for name in sys.modules if name.startswith("mcp."))]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it fails as when it is not installed
    monkeypatch.delitem(sys.modules, "agent.mcp_server", raising=False)
    assert main(["mcp", "--model", "scripted:unused.json"]) == 2
    assert capsys.readouterr().err == ("forethought: forethought mcp needs the mcp package: pip install "
                                       "'forethought[mcp]' (or pip install mcp)\n")
