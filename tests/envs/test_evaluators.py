"""WebArena's evaluators: each rule and quirk of the original, string checks on their own and page
checks in real headless Chromium on pages served from 127.0.0.1; and WebArena-Verified's scoring of
our agent_response.json + network.har."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from envs.browser import BrowserSession
from envs.webarena.checks import EvaluationError, clean_answer, exact_match, must_include
from envs.webarena.config import parse_task
from envs.webarena.evaluators import (
    JudgeReplyError,
    JudgeRequiredError,
    answer_from_stop_action,
    evaluate,
    evaluate_url_match,
)
from envs.webarena.program_html import HelperNotAvailableError, reddit_get_post_url
from envs.webarena.verified import agent_response, infer_task_type, write_agent_response
from tests.pages.page_server import PageServer

# webarena-verified's URL normalizer warns about an idna option at every call.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:url_normalize.*")


def task(eval_: dict[str, Any], intent: str = "What is the answer?", task_id: int = 1) -> Any:
    return parse_task({"task_id": task_id, "intent": intent, "start_url": "http://127.0.0.1/", "eval": eval_},
                      use_env=False)


def string_task(answers: dict[str, Any], string_note: str = "") -> Any:
    return task({"eval_types": ["string_match"], "reference_answers": answers, "string_note": string_note})


class ScriptedJudge:
    """Replies with a fixed text and remembers the prompts it was given."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    async def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.reply


class NoPage:
    url = "http://127.0.0.1/"


# ---------------------------------------------------------------------------------------------
# clean_answer, exact_match, must_include


@pytest.mark.parametrize("raw, cleaned", [
    ("  Hello World \n", "hello world"),
    ("'Quoted'", "quoted"),
    ('"Double"', "double"),
    ("\"'Both'\"", "'both'"),  # only one pair of quotes is removed
    ("'unbalanced", "'unbalanced"),
    ("'mixed\"", "'mixed\""),
])
def test_clean_answer_strips_one_pair_of_quotes_and_lowercases(raw, cleaned):
    assert clean_answer(raw) == cleaned


def test_exact_match_ignores_case_quotes_and_outer_space_only():
    assert exact_match("Quest Lumaflex™ Band", '  "quest lumaflex™ band" ') == 1.0
    assert exact_match("Quest Lumaflex™ Band", "Quest Lumaflex™ Band.") == 0.0
    assert exact_match("5", "five") == 0.0


def test_must_include_is_a_substring_check():
    assert must_include("$279.49", "The price is $279.49.") == 1.0
    assert must_include("FAX", "hp fax machine") == 1.0
    assert must_include("$279.49", "The price is $279.50") == 0.0


def test_single_character_reference_must_be_a_whole_token():
    # WebArena task 144: reference ["0"]; "$0.00" fails because "0" is not one of its tokens.
    assert must_include("0", "$0.00", tokenize=True) == 0.0
    assert must_include("0", "0", tokenize=True) == 1.0
    assert must_include("0", "I spent 0 dollars", tokenize=True) == 1.0
    assert must_include("0", "It was 10", tokenize=True) == 0.0
    # A sentence-final period is split off, also mid-text (Punkt's sentence split).
    assert must_include("0", "The total is 0.", tokenize=True) == 1.0
    assert must_include("0", "I spent 0. Nothing else", tokenize=True) == 1.0
    # Without the rule it is a plain substring check.
    assert must_include("0", "$0.00", tokenize=False) == 1.0


async def test_must_include_tokenizes_only_when_the_list_has_one_item():
    one = string_task({"must_include": ["0"]})
    assert (await evaluate(one, NoPage(), "$0.00")).score == 0.0
    assert (await evaluate(one, NoPage(), "0")).score == 1.0
    two = string_task({"must_include": ["0", "5"]})
    assert (await evaluate(two, NoPage(), "$0.05")).score == 1.0  # substrings: no token rule
    assert (await evaluate(two, NoPage(), "$0.00")).score == 0.0  # every item must be there


async def test_string_match_exact_and_explanation():
    config = string_task({"exact_match": "Quest Lumaflex™ Band"})
    good = await evaluate(config, NoPage(), "'Quest Lumaflex™ Band'")
    assert good.score == 1.0 and good.success
    bad = await evaluate(config, NoPage(), "Sprite Yoga Strap")
    assert bad.score == 0.0
    text = bad.explain()
    assert "quest lumaflex™ band" in text and "sprite yoga strap" in text and "FAIL exact_match" in text
    assert bad.to_dict()["results"][0]["checks"][0]["expected"] == "'quest lumaflex™ band'"


# ---------------------------------------------------------------------------------------------
# fuzzy_match and the N/A path


@pytest.mark.parametrize("reply, score", [
    ("The student answer is correct.", 1.0),
    ("Correct", 1.0),
    ("incorrect", 0.0),
    ("The answer is partially correct", 0.0),
    ("It is not correct; it is Incorrect.", 0.0),
])
async def test_fuzzy_match_reads_the_judges_verdict(reply, score):
    judge = ScriptedJudge(reply)
    config = string_task({"fuzzy_match": ["4min"]})
    result = await evaluate(config, NoPage(), "About 4 minutes", judge=judge)
    assert result.score == score
    prompt = judge.prompts[0]
    # The judge sees the question, the reference and the (cleaned) answer.
    assert "What is the answer?" in prompt and "4min" in prompt and "about 4 minutes" in prompt
    assert "correct, incorrect, partially correct" in prompt


async def test_fuzzy_match_multiplies_over_references_and_reads_unclear_replies_as_errors():
    judge = ScriptedJudge("correct")
    config = string_task({"fuzzy_match": ["a", "b"]})
    assert (await evaluate(config, NoPage(), "a and b", judge=judge)).score == 1.0
    assert len(judge.prompts) == 2
    with pytest.raises(JudgeReplyError, match="neither"):
        await evaluate(config, NoPage(), "a", judge=ScriptedJudge("I am not sure"))


@pytest.mark.parametrize("reply, score", [("correct", 1.0), ("incorrect", 0.0)])
async def test_fuzzy_match_asks_the_judge_about_an_empty_answer_too(reply, score):
    # WebArena's StringEvaluator.fuzzy_match calls llm_fuzzy_match whatever the answer; the judge decides.
    judge = ScriptedJudge(reply)
    result = await evaluate(string_task({"fuzzy_match": ["No, it is open"]}), NoPage(), "", judge=judge)
    assert result.score == score and len(judge.prompts) == 1 and "student answer: \n" in judge.prompts[0]


# What WebArena scores, we score the same; the loader refuses only what its evaluators raise on.
@pytest.mark.parametrize("answers, answer, score", [
    ({"must_include": []}, "anything", 1.0),  # an empty list checks nothing: 1
    ({"exact_match": "42", "regex": "4\\d"}, "42", 1.0),  # an unknown key is ignored
    ({"exact_match": "42", "regex": "4\\d"}, "43", 0.0),
])
async def test_string_match_scores_configs_as_webarena_does(answers, answer, score):
    assert (await evaluate(string_task(answers), NoPage(), answer)).score == score


async def test_an_unknown_answer_kind_is_explained_as_ignored():
    result = await evaluate(string_task({"regex": "4\\d"}), NoPage(), "43")
    assert result.score == 1.0 and "pass regex: expected nothing; found - (not an answer kind WebArena knows" in \
        result.explain()


async def test_fuzzy_match_without_a_judge_is_a_clear_error():
    with pytest.raises(JudgeRequiredError, match=r"task 1: fuzzy_match needs an LLM judge"):
        await evaluate(string_task({"fuzzy_match": ["x"]}), NoPage(), "y")


async def test_not_achievable_answer_matches_without_the_judge():
    config = string_task({"fuzzy_match": "N/A"}, string_note="There is no review about under water photo")
    assert (await evaluate(config, NoPage(), "N/A")).score == 1.0
    assert (await evaluate(config, NoPage(), ' "n/a" ')).score == 1.0


@pytest.mark.parametrize("reply, score", [("[same]", 1.0), ("different", 0.0)])
async def test_not_achievable_with_a_reason_asks_the_judge_about_string_note(reply, score):
    judge = ScriptedJudge(reply)
    config = string_task({"fuzzy_match": "N/A"}, string_note="There is no review about under water photo")
    result = await evaluate(config, NoPage(), "No reviewer mentions underwater photos", judge=judge)
    assert result.score == score
    assert "There is no review about under water photo" in judge.prompts[0]
    assert "no reviewer mentions underwater photos" in judge.prompts[0]
    assert [c.rule for c in result.results[0].checks] == ["N/A", "N/A reason"]


def test_answer_from_stop_action():
    assert answer_from_stop_action("stop [$279.49]") == "$279.49"
    assert answer_from_stop_action("stop[N/A]") == "N/A"
    assert answer_from_stop_action("stop []") == ""
    assert answer_from_stop_action("stop") == ""


# ---------------------------------------------------------------------------------------------
# url_match


def url_eval(reference_url: str) -> Any:
    return task({"eval_types": ["url_match"], "reference_url": reference_url}).eval


@pytest.mark.parametrize("reference, page_url, score", [
    ("http://h:80/dashboard/todos", "http://h:80/dashboard/todos", 1.0),
    ("http://h:80/dashboard/todos", "http://h:80/dashboard/todos/", 1.0),  # trailing slash
    ("http://h:80/dashboard/todos/", "http://h:80/dashboard/todos", 1.0),
    ("http://h:80/dashboard", "http://h:80/dashboard/todos", 1.0),  # GOLD in PRED: a substring
    ("http://h:80/dashboard/todos", "http://h:80/dashboard", 0.0),
    ("http://h:80/dashboard/todos", "http://other:80/dashboard/todos", 0.0),
    ("http://h:80/a |OR| http://h:80/b", "http://h:80/b", 1.0),  # |OR| alternatives
    ("http://h:80/a |OR| http://h:80/b", "http://h:80/c", 0.0),
    ("http://h:80/search?q=fax", "http://h:80/search?q=fax&page=2", 1.0),  # extra query keys are fine
    ("http://h:80/search?q=fax", "http://h:80/search?q=phone", 0.0),
    ("http://h:80/search?q=fax", "http://h:80/search", 0.0),
    ("http://h:80/s?q=a |OR| http://h:80/s?q=b", "http://h:80/s?q=b", 1.0),  # values pooled per key
    # Query keys of all |OR| alternatives are pooled, so the prediction needs every key (WebArena).
    ("http://h:80/s?x=1 |OR| http://h:80/s?y=2", "http://h:80/s?y=2", 0.0),
    # Only the whole URL loses a trailing "/", not the path before "?" (as in WebArena tasks 45, 102, 343).
    ("http://h:80/a/?q=1", "http://h:80/a?q=1", 0.0),
    ("http://h:80/a/?q=1", "http://h:80/a/?q=1", 1.0),
    ("http://h:80/a?q=1", "http://h:80/a/?q=1", 1.0),  # GOLD in PRED: "h:80/a" is within "h:80/a/"
])
def test_url_match_gold_in_pred(reference, page_url, score):
    assert evaluate_url_match(url_eval(reference), page_url).score == score


def test_url_match_explains_what_was_compared():
    result = evaluate_url_match(url_eval("http://h:80/search?q=fax"), "http://h:80/search?q=phone")
    text = "\n".join(c.describe() for c in result.checks)
    assert "'h:80/search'" in text and "query q" in text and "['fax']" in text and "['phone']" in text


# ---------------------------------------------------------------------------------------------
# Pages in Chromium

PAGES: dict[str, str] = {
    "/search": """<title>Search</title><form><input name="q" value="HP Fax Machine"></form>
        <p id="price">Price: $279.49 &amp; free shipping</p>""",
    "/f/consoles/12/some-title/comment/7": "<title>comment</title><p>a comment</p>",
    "/f/consoles/12/": """<title>post</title><div class="submission__inner">What is the recommended
        console to buy these days? <a href="/img/ab12.jpg">pic</a><img src="/img/cd34.png"></div>""",
    "/admin/rule": """<title>rule</title>
        <div data-index="actions"><span class="admin__collapsible-title"
            onclick="document.getElementById('act').hidden = false">Actions</span></div>
        <select id="act" name="simple_action" hidden><option value="by_fixed">fixed</option>
            <option value="by_percent" selected>percent</option></select>
        <p id="opened">closed</p>
        <script>document.querySelector('.admin__collapsible-title').addEventListener('click',
            () => { document.getElementById('opened').textContent = 'opened'; });</script>""",
    "/members": """<title>members</title><table>
        <tr><td data-label="Account"><span class="gl-avatar-labeled-sublabel">@byteblaze</span></td>
            <td class="col-max-role"><span>Owner</span></td></tr>
        <tr><td data-label="Account"><span class="gl-avatar-labeled-sublabel">@yjlou</span></td>
            <td class="col-max-role"><span>Developer</span></td></tr></table>""",
    "/orders/latest": "<title>order</title><div class='ordered'>Item B07DFJ5XKH qty 1</div>",
}


@pytest.fixture(scope="module")
def server():
    site = PageServer(PAGES)
    yield site.url
    site.close()


@pytest_asyncio.fixture(scope="module")
async def browser():
    session = BrowserSession()
    await session.start()
    yield session
    await session.close()


@pytest_asyncio.fixture
async def page(browser):
    await browser.new_context()
    yield browser.page
    await browser.close_context()


def html_task(targets: list[dict[str, Any]], eval_types: tuple[str, ...] = ("program_html",), **extra: Any) -> Any:
    return task({"eval_types": list(eval_types), "program_html": targets, **extra})


async def test_program_html_last_page_with_a_js_locator(server, page):
    await page.goto(server + "/search")
    config = html_task([{"url": "last", "locator": "document.querySelector('[name=\"q\"]').value",
                         "required_contents": {"must_include": ["fax |OR| facsimile"]}}])
    assert (await evaluate(config, page, "", wait_seconds=0)).score == 1.0
    config = html_task([{"url": "last", "locator": "document.querySelector('[name=\"q\"]').value",
                         "required_contents": {"must_include": ["telefax |OR| facsimile"]}}])
    result = await evaluate(config, page, "", wait_seconds=0)
    assert result.score == 0.0
    assert "'telefax' or 'facsimile'" in result.explain() and "hp fax machine" in result.explain()


async def test_program_html_empty_locator_reads_the_unescaped_page(server, page):
    await page.goto(server + "/")
    config = html_task([{"url": server + "/search", "locator": "",
                         "required_contents": {"must_include": ["$279.49 & free shipping", "HP Fax"]}}])
    result = await evaluate(config, page, "", wait_seconds=0)
    assert result.score == 1.0  # "&amp;" in the HTML was unescaped; the explicit URL was opened
    assert page.url == server + "/search"


async def test_program_html_exact_match_is_cleaned_but_whole(server, page):
    await page.goto(server + "/search")
    locator = "document.querySelector('#price').outerText"
    ok = html_task([{"url": "last", "locator": locator,
                     "required_contents": {"exact_match": "PRICE: $279.49 & FREE SHIPPING"}}])
    assert (await evaluate(ok, page, "", wait_seconds=0)).score == 1.0
    partial = html_task([{"url": "last", "locator": locator, "required_contents": {"exact_match": "$279.49"}}])
    assert (await evaluate(partial, page, "", wait_seconds=0)).score == 0.0


async def test_program_html_func_url_uses_the_last_url(server, page):
    await page.goto(server + "/f/consoles/12/some-title/comment/7")
    config = html_task([{"url": "func:reddit_get_post_url('__last_url__')",
                         "locator": "document.querySelector('.submission__inner').outerText",
                         "required_contents": {"must_include": ["what is the recommended console to buy these days"]}}])
    assert (await evaluate(config, page, "", wait_seconds=0)).score == 1.0
    assert page.url == server + "/f/consoles/12/"


async def test_program_html_spread_locator(server, page):
    await page.goto(server + "/f/consoles/12/")
    locator = ("[...document.querySelector('.submission__inner').querySelectorAll('[href],[src]')]"
               ".map(elem => elem.getAttribute('href') || elem.getAttribute('src')).join(' ')")
    config = html_task([{"url": "last", "locator": locator,
                         "required_contents": {"must_include": ["ab12.jpg", "cd34.png"]}}])
    assert (await evaluate(config, page, "", wait_seconds=0)).score == 1.0


async def test_program_html_prep_actions_run_before_the_locator(server, page):
    await page.goto(server + "/admin/rule")
    target = {"url": "last", "locator": "document.querySelector('#opened').textContent",
              "required_contents": {"exact_match": "opened"}}
    assert (await evaluate(html_task([target]), page, "", wait_seconds=0)).score == 0.0
    target["prep_actions"] = ["document.querySelector('[data-index=\"actions\"]')"
                              ".querySelector('.admin__collapsible-title').click()"]
    assert (await evaluate(html_task([target]), page, "", wait_seconds=0)).score == 1.0
    select = {"url": "last", "locator": "document.querySelector('[name=\"simple_action\"]').value",
              "required_contents": {"exact_match": "by_percent"}}
    assert (await evaluate(html_task([select]), page, "", wait_seconds=0)).score == 1.0


async def test_program_html_failing_prep_and_locator_read_as_empty_with_a_note(server, page):
    await page.goto(server + "/search")
    config = html_task([{"url": "last", "locator": "document.querySelector('#missing').value",
                         "prep_actions": ["document.querySelector('#nothing').click()"],
                         "required_contents": {"exact_match": ""}}])
    result = await evaluate(config, page, "", wait_seconds=0)
    assert result.score == 1.0  # the content is "" — WebArena's reading of a page that is wrong
    assert "prep action failed" in result.explain() and "locator raised" in result.explain()


async def test_program_html_js_null_reads_as_the_text_None(server, page):
    # WebArena applies str() to what page.evaluate returns: null becomes "None".
    await page.goto(server + "/search")
    config = html_task([{"url": "last", "locator": "document.querySelector('#missing')",
                         "required_contents": {"exact_match": "None"}}])
    assert (await evaluate(config, page, "", wait_seconds=0)).score == 1.0


async def test_program_html_func_locator_calls_a_page_helper(server, page):
    await page.goto(server + "/members")
    config = html_task([
        {"url": "last", "locator": "func:gitlab_get_project_memeber_role(__page__, 'yjlou')",
         "required_contents": {"must_include": ["Developer"]}},
        {"url": "last", "locator": "func:gitlab_get_project_memeber_role(__page__, 'byteblaze')",
         "required_contents": {"exact_match": "owner"}},
    ])
    assert (await evaluate(config, page, "", wait_seconds=0)).score == 1.0


async def test_program_html_helpers_can_be_given_and_missing_ones_are_named(server, page):
    await page.goto(server + "/")
    config = html_task([{"url": "func:shopping_get_latest_order_url()",
                         "locator": "document.querySelector('.ordered').outerText",
                         "required_contents": {"must_include": ["B07DFJ5XKH"]}}])
    with pytest.raises(HelperNotAvailableError, match="shopping_get_latest_order_url"):
        await evaluate(config, page, "", wait_seconds=0)
    helpers = {"shopping_get_latest_order_url": lambda: server + "/orders/latest"}
    assert (await evaluate(config, page, "", helpers=helpers, wait_seconds=0)).score == 1.0
    unknown = html_task([{"url": "func:no_such_helper()", "locator": "",
                          "required_contents": {"must_include": ["x"]}}])
    with pytest.raises(HelperNotAvailableError, match="unknown program_html helper 'no_such_helper'"):
        await evaluate(unknown, page, "", wait_seconds=0)
    sneaky = html_task([{"url": "func:reddit_get_post_url(__import__('os').getcwd())", "locator": "",
                         "required_contents": {"must_include": ["x"]}}])
    with pytest.raises(EvaluationError, match="arguments must be literals"):
        await evaluate(sneaky, page, "", wait_seconds=0)


def test_reddit_get_post_url_leaves_other_urls_alone():
    assert reddit_get_post_url("http://h/f/books/5/title/comment/9") == "http://h/f/books/5/"
    assert reddit_get_post_url("http://h/forums") == "http://h/forums"
    assert reddit_get_post_url("http://h/user/a/b") == "http://h/user/a/b"


async def test_program_html_waits_after_opening_a_page(server, page):
    import time

    config = html_task([{"url": server + "/search", "locator": "", "required_contents": {"must_include": ["fax"]}}])
    started = time.perf_counter()
    await evaluate(config, page, "", wait_seconds=0.5)
    assert time.perf_counter() - started >= 0.5


# ---------------------------------------------------------------------------------------------
# Several evaluators: order and multiplication


async def test_scores_multiply_across_evaluators_in_order(server, page):
    await page.goto(server + "/search?q=fax")
    both = {"eval_types": ["string_match", "url_match"], "reference_answers": {"must_include": ["$279.49"]},
            "reference_url": server + "/search?q=fax"}
    assert (await evaluate(task(both), page, "It costs $279.49")).score == 1.0
    assert (await evaluate(task(both), page, "It costs $300")).score == 0.0
    await page.goto(server + "/search?q=phone")
    result = await evaluate(task(both), page, "It costs $279.49")
    assert result.score == 0.0 and [r.score for r in result.results] == [1.0, 0.0]


async def test_url_match_sees_the_page_before_program_html_moves_it(server, page):
    # eval_types order matters: url_match reads page.url before program_html opens its own URL.
    await page.goto(server + "/f/consoles/12/")
    config = html_task([{"url": server + "/search", "locator": "", "required_contents": {"must_include": ["fax"]}}],
                       eval_types=("url_match", "program_html"), reference_url=server + "/f/consoles/12")
    result = await evaluate(config, page, "", wait_seconds=0)
    assert [r.score for r in result.results] == [1.0, 1.0]
    config = html_task([{"url": server + "/search", "locator": "", "required_contents": {"must_include": ["fax"]}}],
                       eval_types=("program_html", "url_match"), reference_url=server + "/f/consoles/12")
    await page.goto(server + "/f/consoles/12/")
    result = await evaluate(config, page, "", wait_seconds=0)
    assert [r.score for r in result.results] == [1.0, 0.0]


# ---------------------------------------------------------------------------------------------
# WebArena-Verified: agent_response.json


def test_agent_response_for_each_kind_of_answer():
    assert agent_response("$279.49", "retrieve") == {
        "task_type": "RETRIEVE", "status": "SUCCESS", "retrieved_data": ["$279.49"], "error_details": None}
    assert agent_response('["a", "b"]', "RETRIEVE")["retrieved_data"] == ["a", "b"]
    assert agent_response("Done", "MUTATE") == {
        "task_type": "MUTATE", "status": "SUCCESS", "retrieved_data": None, "error_details": None}
    not_found = agent_response("N/A: there is no such review", "RETRIEVE")
    assert not_found["status"] == "NOT_FOUND_ERROR" and not_found["retrieved_data"] is None
    assert not_found["error_details"] == "there is no such review"
    assert agent_response('"n/a"', "NAVIGATE")["status"] == "NOT_FOUND_ERROR"
    assert agent_response("Nashville", "RETRIEVE")["status"] == "SUCCESS"  # "N..." alone is not N/A
    assert agent_response(None, "RETRIEVE")["status"] == "UNKNOWN_ERROR"
    given = {"task_type": "MUTATE", "status": "ACTION_NOT_ALLOWED_ERROR", "retrieved_data": None,
             "error_details": "cannot"}
    assert agent_response(json.dumps(given), "RETRIEVE") == given
    with pytest.raises(ValueError, match="task_type must be one of"):
        agent_response("x", "BROWSE")


def test_task_type_is_inferred_from_the_webarena_checks():
    assert infer_task_type(string_task({"must_include": ["x"]})) == "RETRIEVE"
    assert infer_task_type(task({"eval_types": ["url_match"], "reference_url": "http://h/x"})) == "NAVIGATE"
    changed = html_task([{"url": "http://h/post", "locator": "", "required_contents": {"must_include": ["x"]}}])
    assert infer_task_type(changed) == "MUTATE"
    shown = html_task([{"url": "last", "locator": "", "required_contents": {"must_include": ["x"]}}])
    assert infer_task_type(shown) == "NAVIGATE"


@pytest.fixture(scope="module")
def verified_scorer(server):
    from webarena_verified.api.webarena_verified import WebArenaVerified
    from webarena_verified.types.config import WebArenaVerifiedConfig

    config = WebArenaVerifiedConfig(environments={"__GITLAB__": {"urls": [server]},
                                                  "__SHOPPING__": {"urls": [server]}})
    return WebArenaVerified(config=config)


async def record_run(browser: BrowserSession, server: str, task_dir: Path, paths: list[str], answer: str | None,
                     task_type: str) -> None:
    """What the runner writes for a task: network.har from the browser, agent_response.json."""
    task_dir.mkdir(parents=True)
    await browser.new_context(record_har_path=str(task_dir / "network.har"), record_har_content="embed")
    try:
        for path in paths:
            await browser.page.goto(server + path)
    finally:
        await browser.close_context()  # closing the context writes the HAR
    write_agent_response(task_dir, answer, task_type)


@pytest.mark.parametrize("task_id, paths, answer, task_type, status", [
    (44, ["/", "/dashboard/todos"], "", "NAVIGATE", "success"),  # "Open my todos page"
    (44, ["/", "/dashboard/issues"], "", "NAVIGATE", "failure"),
    (144, ["/"], "0", "RETRIEVE", "success"),  # spent on food: 0
    (144, ["/"], "$12.50", "RETRIEVE", "failure"),
    (22, ["/"], "N/A: no review mentions under water photos", "RETRIEVE", "success"),
    # The package reports data given for a NOT_FOUND task as an evaluation error (score 0), not a failure.
    (22, ["/"], "The reviews praise the photos", "RETRIEVE", "error"),
])
async def test_webarena_verified_scores_our_run(browser, server, verified_scorer, tmp_path, task_id, paths, answer,
                                                task_type, status):
    task_dir = tmp_path / str(task_id)
    await record_run(browser, server, task_dir, paths, answer, task_type)
    har = json.loads((task_dir / "network.har").read_text())
    assert any(e["request"]["url"] == server + paths[-1] for e in har["log"]["entries"])
    result = verified_scorer.evaluate_task(task_id=task_id, agent_response=task_dir / "agent_response.json",
                                           network_trace=task_dir / "network.har")
    assert str(result.status.value) == status, result
    assert result.score == (1.0 if status == "success" else 0.0)
