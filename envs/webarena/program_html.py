"""WebArena's program_html evaluator: open each target page, read a value off it (a JS locator or a
"func:" helper), compare it with exact_match or must_include; and the helpers WebArena's configs name."""
from __future__ import annotations

import ast
import asyncio
import html
import inspect
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from envs.types import first_line
from envs.webarena.checks import Check, EvaluationError, EvaluatorResult, brief, clean_answer, exact_match, must_include
from envs.webarena.config import OR_SEPARATOR, EvalConfig, ProgramHtmlTarget

DEFAULT_PAGE_WAIT_SECONDS = 3.0  # WebArena sleeps 3 s after opening a program_html URL


class HelperNotAvailableError(EvaluationError, NotImplementedError):
    pass


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
                notes.append(f"prep action failed, later ones skipped: {first_line(exc)}")
                break
        try:
            value = str(await page.evaluate(f"() => {locator}"))  # str(None) is "None", as in WebArena
        except Exception as exc:  # WebArena: the page is wrong, so the content is empty
            notes.append(f"locator raised, read as empty: {first_line(exc)}")
            value = ""
        return value or ""
    return await call_helper(locator.removeprefix("func:"), page, helpers)




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
        shown = brief(found, 300) if len(found) <= 300 else f"{len(found)} chars: {brief(found, 300)}"
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
