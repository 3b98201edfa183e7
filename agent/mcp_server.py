"""`forethought mcp`: the agent's browser, world model and planner as the tools of an MCP server over
stdio (the `mcp` package, an optional extra). What each tool does is agent/mcp_tools.py; here they are
described for the calling model, one call at a time on the session's page, and every failure a caller
can meet (a bad action, a blocked URL, a model's error, a spent budget) is the call's error in one
sentence, never the server's end."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from agent.llm.budget import BudgetExceeded
from agent.llm.openai_client import LLMError
from agent.llm.protocol import ConfigError
from agent.llm.scripted import ScriptExhausted
from agent.mcp_tools import CallRefused, Reply, Tools
from envs.action_table import SIGNATURES, signature
from envs.actions import ActionError
from envs.browser import BrowserCrashed
from envs.types import first_line

log = logging.getLogger(__name__)
# What a caller can run into; anything else is a bug, told by its type and logged with its traceback.
CALL_ERRORS = (CallRefused, ConfigError, LLMError, ScriptExhausted, ActionError, BrowserCrashed)

INSTRUCTIONS = """A web browser with an agent that thinks before it clicks. Call `open` with a URL and a goal \
first: it starts a session on that page, which may reach only the page's own origin. `observe` shows the page, \
one line per element; interactive ones have ids (e12) that actions name. Before acting, `imagine` asks the \
world model what an action would do, and `plan_step` proposes, imagines and scores candidate actions; neither \
runs anything. `act` runs one action. `run_task` lets the agent do a whole task on its own."""

ACTIONS = "; ".join(signature(name) for name in SIGNATURES)  # the grammar, as envs/action_table.py holds it
ACT_DESCRIPTION = (
    "Run one action on the page and return the page after it. An action that fails, or a URL outside the "
    "session's origins, is the call's error. If the action was imagined on this page first, the reply also says "
    f"how far the real outcome departed from the prediction (surprise, 0 to 1). Element ids are the page's "
    f"(e12). Actions: {ACTIONS}.")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def build_server(tools: Tools) -> MCPServer:
    server: MCPServer = MCPServer("forethought", instructions=INSTRUCTIONS, log_level="WARNING")
    page = asyncio.Lock()  # the session's calls take turns on its one page

    async def answer(call: Callable[[], Awaitable[Reply]]) -> CallToolResult:
        try:
            reply = await call()
        except CALL_ERRORS as exc:
            raise ToolError(tools.scrub(first_line(exc))) from None
        except BudgetExceeded as exc:
            raise ToolError(f"the session's model budget is spent ({exc.reason}); open a page again to start a "
                            "session with a new budget") from None
        except Exception as exc:
            log.exception("a tool call failed")
            raise ToolError(tools.scrub(f"internal error, the server goes on: {type(exc).__name__}: "
                                        f"{first_line(exc)}")) from None
        return CallToolResult(content=[TextContent(type="text", text=tools.scrub(reply.text))],
                              structured_content=tools.scrub(reply.data))

    @server.tool(name="open")
    async def open_page(url: str, goal: str = "") -> CallToolResult:
        """Open a page and start a session on it, with the goal the agent's models work towards (a MiniWoB++
        task brings its own). url: an http(s) URL, a file path, bundled:NAME or miniwob:TASK. The session may
        reach only the page's own origin (and domains the server allows); it is recorded as a trace. Returns
        the page as the agent sees it."""
        async with page:
            return await answer(lambda: tools.open(url, goal))

    @server.tool(annotations=READ_ONLY)
    async def observe() -> CallToolResult:
        """The session's page as the agent sees it now: one line per element, each interactive one with an id
        (e12) that actions name."""
        async with page:
            return await answer(lambda: tools.open_session().observe())

    @server.tool(description=ACT_DESCRIPTION)
    async def act(action: str) -> CallToolResult:
        async with page:
            return await answer(lambda: tools.open_session().act(action))

    @server.tool(annotations=READ_ONLY)
    async def imagine(action: str, horizon: int | None = None) -> CallToolResult:
        """What the world model predicts `action` would do to the page (what changes, appears and disappears,
        the URL it leads to), without running it: the page does not change. horizon: imagined steps (default:
        the server's --horizon); after the first, the policy picks each next action in imagination."""
        async with page:
            return await answer(lambda: tools.open_session().imagine(action, horizon))

    @server.tool()
    async def plan_step() -> CallToolResult:
        """One planning step towards the session's goal, without acting: the policy proposes candidate
        actions, the world model imagines each one's outcome and the verifier scores it (as the server's
        --strategy plans). Returns the candidates best first, with their imagined outcomes and scores, and
        the one the planner would run; run it with act."""
        async with page:
            return await answer(lambda: tools.open_session().plan_step())

    @server.tool()
    async def run_task(goal: str, url: str | None = None) -> CallToolResult:
        """Run the agent on `goal` to the end, in a browser of its own, from url (default: the page the
        session was opened with), and return its result: answer, stop reason, steps, tokens, cost and where
        its trace is. The session's page is left as it was."""
        return await answer(lambda: tools.run_task(goal, url))

    return server


async def serve(tools: Tools) -> None:
    """Serve `tools` over stdin and stdout until the client closes stdin."""
    await build_server(tools).run_stdio_async()
