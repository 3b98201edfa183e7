"""WebArena task configs: both formats, placeholders, malformed configs, the 812 official tasks, and
WebArenaTask starting (multi-tab, storage state) and scoring in real headless Chromium."""
from __future__ import annotations

import collections
import copy
import json
import re
from typing import Any

import pytest
import pytest_asyncio

from envs.browser import BrowserSession
from envs.env import BrowserEnv
from envs.webarena import (
    TaskConfigError,
    UnresolvedPlaceholderError,
    WebArenaTask,
    load_tasks,
    load_webarena_official,
    parse_task,
)
from tests.pages.page_server import PageServer

RAW_TASK: dict[str, Any] = {
    "sites": ["shopping"], "task_id": 7, "require_login": True,
    "storage_state": "./.auth/shopping_state.json",
    "start_url": "__SHOPPING__", "geolocation": None,
    "intent_template": "What is the price of {{item}}", "instantiation_dict": {"item": "HP fax"},
    "intent": "What is the price of HP fax", "intent_template_id": 1, "require_reset": False,
    "eval": {"eval_types": ["string_match", "program_html"],
             "reference_answers": {"must_include": ["$279.49"]},
             "reference_url": "", "string_note": "",
             "program_html": [{"url": "last",
                               "locator": "document.querySelector('[name=\"q\"]').value",
                               "required_contents": {"must_include": ["fax |OR| facsimile"]}}]},
}

VERIFIED_TASK: dict[str, Any] = {
    "sites": ["gitlab"], "task_id": 44, "intent_template_id": 303, "start_urls": ["__GITLAB__"],
    "intent": "Open my todos page", "intent_template": "Open my todos page", "instantiation_dict": {},
    "eval": [{"evaluator": "AgentResponseEvaluator", "results_schema": {"type": "null"},
              "expected": {"task_type": "navigate", "status": "SUCCESS", "retrieved_data": None}},
             {"evaluator": "NetworkEventEvaluator", "ignored_query_params_patterns": ["page", "sort"],
              "expected": {"url": ["__GITLAB__/dashboard/todos"]}}],
    "revision": 2,
}

SITE_VARS = ["SHOPPING", "SHOPPING_ADMIN", "REDDIT", "GITLAB", "WIKIPEDIA", "MAP", "HOMEPAGE"]


@pytest.fixture(autouse=True)
def no_site_env(monkeypatch):
    for name in SITE_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"WA_{name}", raising=False)


def raw(**changes: Any) -> dict[str, Any]:
    task = copy.deepcopy(RAW_TASK)
    task.update(changes)
    return task


# ---------------------------------------------------------------------------------------------
# Loading


def test_raw_task_fields_are_typed(tmp_path):
    path = tmp_path / "7.json"
    path.write_text(json.dumps(RAW_TASK))
    [config] = load_tasks(path, site_urls={"shopping": "http://127.0.0.1:7770/"})
    assert config.task_id == 7 and config.intent == "What is the price of HP fax"
    assert config.start_urls == ("http://127.0.0.1:7770",)  # trailing slash of the base URL dropped
    assert config.require_login and config.storage_state == "./.auth/shopping_state.json"
    assert config.require_reset is False and config.sites == ("shopping",)
    assert config.eval.eval_types == ("string_match", "program_html")
    assert config.eval.reference_answers == {"must_include": ["$279.49"]}
    [target] = config.eval.program_html
    assert target.url == "last" and target.must_include == ("fax |OR| facsimile",) and target.exact_match is None
    assert config.raw["start_url"] == "__SHOPPING__"  # the config as written is kept
    assert config.source == str(path)


def test_a_list_file_and_a_directory_of_id_files(tmp_path):
    many = tmp_path / "tasks.json"
    many.write_text(json.dumps([raw(task_id=1), raw(task_id=2)]))
    assert [t.task_id for t in load_tasks(many, use_env=False)] == [1, 2]
    folder = tmp_path / "configs"
    folder.mkdir()
    for task_id in (10, 2, 1):
        (folder / f"{task_id}.json").write_text(json.dumps(raw(task_id=task_id)))
    assert [t.task_id for t in load_tasks(folder, use_env=False)] == [1, 2, 10]


def test_and_start_url_becomes_one_url_per_tab():
    config = parse_task(raw(start_url="__SHOPPING__/a.html |AND| __SHOPPING__/b.html |AND| __REDDIT__/f/x"),
                        site_urls={"SHOPPING": "http://s", "__REDDIT__": "http://r"})
    assert config.start_urls == ("http://s/a.html", "http://s/b.html", "http://r/f/x")
    assert config.start_url == "http://s/a.html |AND| http://s/b.html |AND| http://r/f/x"


def test_placeholders_come_from_env_vars_then_browsergym_names_and_explicit_urls_win(monkeypatch):
    task = raw(start_url="__SHOPPING__ |AND| __SHOPPING_ADMIN__/admin")
    task["eval"]["reference_url"] = "__SHOPPING__/checkout"
    task["eval"]["program_html"][0]["url"] = "__SHOPPING_ADMIN__/orders"
    monkeypatch.setenv("SHOPPING", "http://shop:7770")
    monkeypatch.setenv("WA_SHOPPING_ADMIN", "http://admin:7780")
    config = parse_task(task)
    assert config.start_urls == ("http://shop:7770", "http://admin:7780/admin")  # _ADMIN__ is not __SHOPPING__
    assert config.eval.reference_url == "http://shop:7770/checkout"
    assert config.eval.program_html[0].url == "http://admin:7780/orders"
    monkeypatch.setenv("SHOPPING_ADMIN", "http://preferred:1")  # WebArena's own name beats WA_*
    assert parse_task(task).start_urls[1] == "http://preferred:1/admin"
    explicit = parse_task(task, site_urls={"shopping": "http://local:9000"})
    assert explicit.start_urls[0] == "http://local:9000"
    with pytest.raises(TaskConfigError, match="unknown site 'shop' in site_urls"):
        parse_task(task, site_urls={"shop": "http://x"})


def test_unresolved_placeholders_are_named_with_the_env_var_to_set():
    config = parse_task(raw(start_url="__GITLAB__ |AND| __REDDIT__"), use_env=False)
    assert config.unresolved_placeholders() == ["__GITLAB__", "__REDDIT__"]
    with pytest.raises(UnresolvedPlaceholderError,
                       match=r"task 7: .*__GITLAB__: set \$GITLAB \(or \$WA_GITLAB\).*__REDDIT__: set \$REDDIT"):
        config.require_resolved()
    resolved = config.with_site_urls({"gitlab": "http://g", "reddit": "http://r"}, use_env=False)
    resolved.require_resolved()
    assert resolved.start_urls == ("http://g", "http://r")


async def test_setup_refuses_a_task_with_unresolved_placeholders():
    task = WebArenaTask(parse_task(raw(), use_env=False))
    with pytest.raises(UnresolvedPlaceholderError, match=r"set \$SHOPPING"):
        await task.setup(None, None)


def test_webarena_verified_format():
    config = parse_task(VERIFIED_TASK, site_urls={"gitlab": "http://g"})
    assert config.start_urls == ("http://g",) and config.eval is None and config.revision == 2
    assert [e["evaluator"] for e in config.verified_eval] == ["AgentResponseEvaluator", "NetworkEventEvaluator"]
    assert config.verified_eval[1]["expected"]["url"] == ["http://g/dashboard/todos"]
    assert config.expected_verified_response["task_type"] == "navigate"


# ---------------------------------------------------------------------------------------------
# Malformed configs: one error naming the task and the field


def _set(path: str, value: Any):
    def change(task: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = task
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return change


_DELETE = object()


def _both(*changes: Any):
    def change(task: dict[str, Any]) -> None:
        for one in changes:
            one(task)
    return change

MALFORMED = [
    (_set("eval.eval_types", "string"),
     "task 7: eval.eval_types must be a list of string_match/url_match/program_html, got 'string'"),
    (_set("eval.eval_types", ["string_match", "html_match"]),
     "task 7: eval.eval_types must be a list of string_match/url_match/program_html \\(WebArena knows no other\\), "
     "got \\[\"html_match\"\\]"),
    (_set("intent", _DELETE), "task 7: intent must be a string, got nothing \\(the key is missing\\)"),
    (_set("intent", "  "), "task 7: intent must be a non-empty string"),
    (_set("start_url", None), "task 7: start_url must be a string, got null"),
    (_set("eval", _DELETE), "task 7: eval must be an object with eval_types"),
    (_set("eval.reference_answers.must_include", "$279.49"),
     "task 7: eval.reference_answers.must_include must be a list of strings, got '\\$279.49'"),
    (_set("eval.reference_answers", {"fuzzy_match": "about 5"}),
     'task 7: eval.reference_answers.fuzzy_match \\(or the string "N/A"\\) must be a list of strings'),
    (_set("eval.reference_answers", {"exact_match": ["a"]}),
     "task 7: eval.reference_answers.exact_match must be a string"),
    (_set("eval.reference_answers", None), "task 7: eval.reference_answers must be an object .*string_match"),
    (_both(_set("eval.eval_types", ["url_match"]), _set("eval.reference_url", _DELETE)),
     "task 7: eval.reference_url must be a string \\(eval_types has url_match\\), got nothing"),
    (_both(_set("eval.eval_types", ["url_match"]), _set("eval.reference_url", None)),
     "task 7: eval.reference_url must be a string \\(eval_types has url_match\\)"),
    (_set("eval.url_note", "PRED in GOLD"), "task 7: eval.url_note must be one of 'GOLD in PRED', got 'PRED in GOLD'"),
    (_set("eval.program_html", _DELETE), "task 7: eval.program_html must be a list of .* got nothing"),
    (_set("eval.program_html.0.locator", "#price"), "task 7: eval.program_html\\[0\\].locator must be"),
    (_set("eval.program_html.0.url", ""), "task 7: eval.program_html\\[0\\].url must be a non-empty string"),
    (_set("eval.program_html.0.required_contents", {"regex": "a"}),
     "task 7: eval.program_html\\[0\\].required_contents must be an object with \"exact_match\" or \"must_include\""),
    (_set("eval.program_html.0.required_contents", {"must_include": "fax"}),
     "task 7: eval.program_html\\[0\\].required_contents.must_include must be a list of strings"),
    (_set("eval.program_html.0.prep_actions", "document.x.click()"),
     "task 7: eval.program_html\\[0\\].prep_actions must be a list of strings"),
    (_set("require_login", "yes"), "task 7: require_login must be true or false, got 'yes'"),
    (_set("require_reset", 1), "task 7: require_reset must be true or false, got 1"),
    (_set("storage_state", 5), "task 7: storage_state must be a path to a Playwright storage-state file"),
    (_set("sites", "shopping"), "task 7: sites must be a list of strings, got 'shopping'"),
    (_set("intent_template_id", "1"), "task 7: intent_template_id must be an integer"),
]


@pytest.mark.parametrize("change, message", MALFORMED, ids=[m[:60] for _, m in MALFORMED])
def test_malformed_config_names_task_and_field(tmp_path, change, message):
    task = raw()
    change(task)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([raw(task_id=6), task]))
    with pytest.raises(TaskConfigError) as error:
        load_tasks(path, use_env=False)
    assert re.match(message, str(error.value)), str(error.value)
    assert str(path) in str(error.value)  # and where the task is


def test_file_level_errors(tmp_path):
    missing_id = tmp_path / "a.json"
    missing_id.write_text(json.dumps([raw(), {"intent": "x"}]))
    with pytest.raises(TaskConfigError, match=r"task at index 1 in .*a\.json: task_id is missing"):
        load_tasks(missing_id)
    broken = tmp_path / "b.json"
    broken.write_text("{not json")
    with pytest.raises(TaskConfigError, match=r"b\.json: not valid JSON"):
        load_tasks(broken)
    twice = tmp_path / "c.json"
    twice.write_text(json.dumps([raw(), raw()]))
    with pytest.raises(TaskConfigError, match="task 7: task_id appears twice"):
        load_tasks(twice)
    with pytest.raises(TaskConfigError, match="no such task file or directory"):
        load_tasks(tmp_path / "nowhere.json")


def test_malformed_verified_configs():
    no_agent_check = copy.deepcopy(VERIFIED_TASK)
    no_agent_check["eval"] = no_agent_check["eval"][1:]
    with pytest.raises(TaskConfigError, match="task 44: eval must be a list with an AgentResponseEvaluator"):
        parse_task(no_agent_check)
    no_urls = dict(VERIFIED_TASK, start_urls=[])
    with pytest.raises(TaskConfigError, match="task 44: start_urls must be a non-empty list of strings, got \\[\\]"):
        parse_task(no_urls)


# ---------------------------------------------------------------------------------------------
# The 812 official tasks


def test_all_812_official_tasks_load_with_both_evaluations():
    tasks = load_webarena_official(use_env=False)
    assert [t.task_id for t in tasks] == list(range(812))
    kinds = collections.Counter("+".join(t.eval.eval_types) for t in tasks)
    assert kinds == {"string_match": 325, "program_html": 282, "url_match+program_html": 129,
                     "url_match": 66, "string_match+url_match": 10}
    answers = collections.Counter(k for t in tasks for k in t.eval.reference_answers)
    assert answers == {"must_include": 176, "fuzzy_match": 118, "exact_match": 45}
    assert all(t.expected_verified_response is not None for t in tasks)
    network_checks = [sum(e["evaluator"] == "NetworkEventEvaluator" for e in t.verified_eval) for t in tasks]
    assert sum(network_checks) == 663 and sum(n > 0 for n in network_checks) == 488  # 663 checks, 488 tasks
    assert sum(len(t.start_urls) > 1 for t in tasks) == 5
    assert all(t.unresolved_placeholders() for t in tasks)  # no site URLs given: run would be refused


def test_official_tasks_resolve_against_given_site_urls():
    urls = {s: f"http://127.0.0.1:{9000 + i}" for i, s in enumerate(
        ["shopping", "shopping_admin", "reddit", "gitlab", "wikipedia", "map"])}
    tasks = load_webarena_official(site_urls=urls, use_env=False)
    assert [t.task_id for t in tasks if t.unresolved_placeholders()] == []
    by_id = {t.task_id: t for t in tasks}
    assert by_id[44].verified_eval[1]["expected"]["url"][0] == "http://127.0.0.1:9003/dashboard/todos"
    assert by_id[431].start_urls[0].startswith("http://127.0.0.1:9000/tall-pink-taper-candles")


# ---------------------------------------------------------------------------------------------
# WebArenaTask in Chromium

PAGES = {
    "/search": "<title>Search</title><input name='q' value='HP fax machine'><p>$279.49</p>",
    "/whoami": "<title>whoami</title><p id='who'></p><script>document.getElementById('who').textContent ="
               " document.cookie + ' | ' + (localStorage.getItem('cart') || 'empty');</script>",
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


async def test_and_start_opens_one_tab_per_url(server, browser):
    config = parse_task(raw(start_url="__SHOPPING__/a |AND| __SHOPPING__/b |AND| __SHOPPING__/c", storage_state=None),
                        site_urls={"shopping": server})
    context = await browser.new_context()
    try:
        goal = await WebArenaTask(config).setup(context, browser.page)
        assert goal == "What is the price of HP fax"
        assert [p.url for p in context.pages] == [f"{server}/a", f"{server}/b", f"{server}/c"]
        assert [await p.title() for p in context.pages] == ["/a", "/b", "/c"]
    finally:
        await browser.close_context()


async def test_storage_state_gives_the_context_cookies_and_local_storage(server, browser, tmp_path):
    auth = tmp_path / ".auth"
    auth.mkdir()
    (auth / "shopping_state.json").write_text(json.dumps({
        "cookies": [{"name": "session", "value": "alice", "domain": "127.0.0.1", "path": "/",
                     "expires": -1, "httpOnly": False, "secure": False, "sameSite": "Lax"}],
        "origins": [{"origin": server, "localStorage": [{"name": "cart", "value": "3 items"}]}],
    }))
    config = parse_task(raw(start_url="__SHOPPING__/whoami"), site_urls={"shopping": server})
    context = await browser.new_context()
    try:
        await WebArenaTask(config, auth_dir=tmp_path).setup(context, browser.page)
        assert await browser.page.text_content("#who") == "session=alice | 3 items"
    finally:
        await browser.close_context()
    context = await browser.new_context()
    try:
        with pytest.raises(TaskConfigError, match=r"task 7: storage_state './.auth/shopping_state.json' not found"):
            await WebArenaTask(config, auth_dir=tmp_path / "elsewhere").setup(context, browser.page)
    finally:
        await browser.close_context()


async def test_validate_waits_for_the_answer_then_scores_and_explains(server, browser):
    config = parse_task(raw(start_url="__SHOPPING__/search", storage_state=None), site_urls={"shopping": server})
    task = WebArenaTask(config, wait_seconds=0)
    context = await browser.new_context()
    try:
        await task.setup(context, browser.page)
        assert await task.validate(browser.page, None) == (0.0, False, {})
        score, done, info = await task.validate(browser.page, "It is $279.49")
        assert (score, done) == (1.0, True)
        assert [r["eval_type"] for r in info["evaluation"]["results"]] == ["string_match", "program_html"]
        score, done, info = await task.validate(browser.page, "It is $300")
        assert (score, done) == (0.0, True)
        assert "FAIL must_include: expected '$279.49' in the answer" in info["evaluation"]["explanation"]
    finally:
        await browser.close_context()


async def test_a_webarena_task_runs_in_browser_env(server, browser):
    config = parse_task(raw(start_url="__SHOPPING__/search", storage_state=None), site_urls={"shopping": server})
    env = BrowserEnv(browser)
    obs, info = await env.reset(WebArenaTask(config, wait_seconds=0))
    assert info["goal"] == "What is the price of HP fax" and obs.url == f"{server}/search"
    obs, reward, terminated, truncated, info = await env.step("send_msg_to_user('$279.49')")
    assert (reward, terminated) == (1.0, True)
    assert info["evaluation"]["score"] == 1.0
    await browser.close_context()


async def test_multi_tab_start_leaves_the_first_tab_active_in_browser_env(server, browser):
    config = parse_task(raw(start_url="__SHOPPING__/a |AND| __SHOPPING__/b", storage_state=None),
                        site_urls={"shopping": server})
    env = BrowserEnv(browser)
    obs, _ = await env.reset(WebArenaTask(config, wait_seconds=0))
    assert [(t.url, t.active) for t in obs.tabs] == [(f"{server}/a", True), (f"{server}/b", False)]
    assert obs.url == f"{server}/a"
    await browser.close_context()


def test_a_task_may_go_to_every_site_its_evaluators_name() -> None:
    from envs.guard import OriginPolicy
    from envs.webarena.task import WebArenaTask

    config = parse_task({
        "task_id": 901, "sites": ["shopping", "shopping_admin"], "start_url": "__SHOPPING__/account",
        "intent": "Check the order in the admin", "require_login": False, "storage_state": None,
        "require_reset": False,
        "eval": {"eval_types": ["url_match", "program_html"], "reference_answers": None,
                 "reference_url": "__SHOPPING_ADMIN__/sales/order |OR| __SHOPPING_ADMIN__/orders",
                 "program_html": [{"url": "last", "locator": "", "required_contents": {"must_include": ["x"]}}]},
    }, site_urls={"shopping": "http://127.0.0.1:7770", "shopping_admin": "http://127.0.0.1:7780/admin"}, use_env=False)
    policy = OriginPolicy.for_task(WebArenaTask(config))
    assert policy.allows("http://127.0.0.1:7770/cart") and policy.allows("http://127.0.0.1:7780/admin/x")
    assert not policy.allows("http://127.0.0.1:9999/") and not policy.allows("file:///etc/passwd")


@pytest.mark.parametrize("change", [
    _set("eval.eval_types", []),  # no evaluator: WebArena's product over none is 1
    _set("eval.reference_answers", {"must_include": []}),
    _set("eval.reference_answers", {"must_include": ["$279.49"], "regex": "a"}),  # ignored there
    _set("eval.program_html", []),
    _set("eval.program_html.0.required_contents", {"must_include": []}),
    _both(_set("eval.eval_types", ["url_match"]), _set("eval.reference_url", "")),
], ids=["no eval types", "empty must_include", "unknown answer kind", "no program_html targets",
        "empty required must_include", "empty reference_url"])
def test_configs_webarena_scores_are_loaded(change):
    task = raw()
    change(task)
    assert parse_task(task, use_env=False).task_id == 7


def test_required_contents_with_both_keys_reads_exact_match_as_webarena_does():
    task = raw()
    _set("eval.program_html.0.required_contents", {"exact_match": "fax", "must_include": ["phone"]})(task)
    [target] = parse_task(task, use_env=False).eval.program_html
    assert target.exact_match == "fax" and target.must_include is None
