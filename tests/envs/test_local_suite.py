"""The local WebArena-style suite: every task file loads as WebArena configs, the suite has the
mix it promises, and for EVERY task the oracle solution scores 1 and every wrong attempt scores 0,
run in headless Chromium against the local sites (reset before each run, so order does not matter).
Also the oracle's element references: how they resolve and how they fail."""
from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections import Counter

import pytest
import pytest_asyncio

from envs.browser import BrowserSession
from envs.env import BrowserEnv
from envs.miniwob import MiniWoBTask
from envs.suites import LocalSites, OracleError, check_sequence, load_local_suite, oracle_of, resolve_step, run_oracle
from envs.suites.local import LOCAL_SITE_FOR, LocalTask, parse_storage_state_path
from envs.tasks import UrlTask
from envs.types import Element, Observation, Task
from envs.webarena.config import TaskConfigError
from envs.webarena.task import WebArenaTask

SUITE = load_local_suite()
FAKE_URLS = {"shopping": "http://127.0.0.1:1", "reddit": "http://127.0.0.1:2", "gitlab": "http://127.0.0.1:3"}


def category(config) -> str:
    """information (string_match), navigation (url_match) or state change (program_html)."""
    return {"string_match": "information", "url_match": "navigation", "program_html": "state change"}[
        config.eval.eval_types[0]]


def is_infeasible(config) -> bool:
    return config.eval.reference_answers.get("exact_match") == "N/A"


# ------------------------------------------------------------------------------------- the files


def test_every_task_is_a_valid_webarena_config_with_an_oracle():
    ids = [str(config.task_id) for config in SUITE]
    assert len(ids) == len(set(ids))
    for config in SUITE:
        assert re.fullmatch(r"local\.(shop|forum|gitlab)\.\d+", str(config.task_id)), config.task_id
        site = str(config.task_id).split(".")[1]
        assert [LOCAL_SITE_FOR[s] for s in config.sites] == [site], config.task_id
        assert config.unresolved_placeholders(), "start URLs are written with WebArena's placeholders"
        resolved = config.with_site_urls(FAKE_URLS, use_env=False)
        resolved.require_resolved()
        assert resolved.start_urls[0].startswith("http://127.0.0.1:")
        assert config.require_login == (config.storage_state is not None), config.task_id
        if config.storage_state:
            assert parse_storage_state_path(config.storage_state)[0] == site
        assert config.intent and config.intent_template and config.intent_template_id is not None
        # fuzzy_match would need an LLM judge: the suite scores without one.
        assert "fuzzy_match" not in config.eval.reference_answers, config.task_id
        oracle = oracle_of(resolved, FAKE_URLS)
        for sequence in (oracle.actions, *oracle.wrong):
            check_sequence(sequence)
            assert not any("__" in step for step in sequence if "goto" in step), "placeholders resolved"
        assert all(wrong != oracle.actions for wrong in oracle.wrong), config.task_id


def test_the_suite_mixes_sites_categories_long_tasks_and_infeasible_ones():
    assert len(SUITE) >= 60
    by_site = Counter(config.sites[0] for config in SUITE)
    assert set(by_site) == {"shopping", "reddit", "gitlab"} and min(by_site.values()) >= 15, by_site
    by_category = Counter(category(config) for config in SUITE)
    assert by_category["information"] >= 15 and by_category["navigation"] >= 10 and by_category["state change"] >= 20, \
        by_category
    long_tasks = [c.task_id for c in SUITE if oracle_of(c).steps >= 5]
    assert len(long_tasks) >= 10, long_tasks
    infeasible = [c for c in SUITE if is_infeasible(c)]
    assert len(infeasible) >= 5
    assert all(c.eval.eval_types == ("string_match",) for c in infeasible)
    assert all(oracle_of(c).actions[-1].startswith("report_infeasible(") for c in infeasible)
    assert sum(c.require_login for c in SUITE) >= 30


def test_a_task_without_an_oracle_is_rejected_with_its_id():
    config = SUITE[0]
    broken = dataclasses.replace(config, raw={**config.raw, "oracle": {"actions": []}})
    with pytest.raises(TaskConfigError, match=rf"task {re.escape(str(config.task_id))}: oracle.actions"):
        oracle_of(broken)


def test_sites_for_tasks_are_just_the_sites_they_use():
    forum_and_gitlab = [c for c in SUITE if c.sites[0] in ("reddit", "gitlab")]
    assert LocalSites.for_tasks(forum_and_gitlab).names == ["forum", "gitlab"]
    with pytest.raises(ValueError, match="unknown site 'wikipedia'"):
        LocalSites(["wikipedia"])


def test_storage_state_names_follow_the_convention():
    assert parse_storage_state_path("./.auth/shop.emma.lopez.json") == ("shop", "emma.lopez")
    with pytest.raises(TaskConfigError, match="<site>.<username>.json"):
        parse_storage_state_path("./.auth/shopping_state.json")


# --------------------------------------------------------------------------- element references


def observation(*elements: tuple[str, str, str]) -> Observation:
    return Observation(url="http://127.0.0.1/page", title="Page",
                       elements=[Element(id=i, role=role, name=name) for i, role, name in elements])


PAGE = observation(("e1", "link", "Sign In"), ("e2", "button", "Update"), ("e3", "button", "Update"),
                   ("e4", "textbox", "Search"), ("e5", "link", "sign in"))


def test_references_resolve_to_the_current_ids():
    assert str(resolve_step("click(@link 'Sign In')", PAGE)) == "click('e1')"
    assert str(resolve_step("click(@link 'sign in')", PAGE)) == "click('e5')", "exact match wins"
    assert str(resolve_step("click(@link 'SIGN IN')", PAGE)) == "click('e1')", "then case-insensitive"
    assert str(resolve_step("click(@button 'Update' #2)", PAGE)) == "click('e3')"
    assert str(resolve_step('fill(@textbox "Search", \'tea @link x\', press_enter=True)', PAGE)) == \
        "fill('e4', 'tea @link x', press_enter=True)"
    assert str(resolve_step("send_msg_to_user('mail me at a@b.com')", PAGE)) == "send_msg_to_user('mail me at a@b.com')"


def test_an_unresolvable_reference_says_what_is_there():
    with pytest.raises(OracleError, match=r"no link named 'Sign up'.*similar elements: link 'Sign In' \(e1\)"):
        resolve_step("click(@link 'Sign up')", PAGE)
    with pytest.raises(OracleError, match=r"only 2 button\(s\) named 'Update'"):
        resolve_step("click(@button 'Update' #3)", PAGE)
    with pytest.raises(OracleError, match="malformed element reference"):
        resolve_step("click(@link Sign In)", PAGE)


def test_a_sequence_must_end_with_its_only_answer():
    check_sequence(["click(@link 'Home')", "send_msg_to_user('x')"])
    with pytest.raises(OracleError, match="ends with exactly one answer"):
        check_sequence(["click(@link 'Home')"])
    with pytest.raises(OracleError, match="ends with exactly one answer"):
        check_sequence(["send_msg_to_user('x')", "click(@link 'Home')", "send_msg_to_user('y')"])
    with pytest.raises(OracleError, match="not a valid action"):
        check_sequence(["clik(@link 'Home')", "send_msg_to_user('x')"])


# ------------------------------------------------------------------------------ every task, live


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    with LocalSites(cache_dir=tmp_path_factory.mktemp("site-cache")) as local_sites:
        yield local_sites


@pytest.fixture(scope="module")
def resolved(sites):
    return {str(config.task_id): config for config in load_local_suite(sites.site_urls)}


@pytest_asyncio.fixture(scope="module")
async def env():
    browser_env = BrowserEnv(BrowserSession())
    await browser_env.session.start()
    yield browser_env
    await browser_env.close()


def explain(info: dict) -> str:
    return info.get("evaluation", {}).get("explanation", "no evaluation") + f"\nactions: {info.get('actions')}"


@pytest.mark.slow
@pytest.mark.parametrize("task_id", [str(config.task_id) for config in SUITE])
async def test_oracle_scores_1_and_every_wrong_attempt_scores_0(task_id, sites, resolved, env):
    config = resolved[task_id]
    oracle = oracle_of(config, sites.site_urls)

    task = sites.task(config)
    score, info = await run_oracle(env, task, oracle.actions)
    assert score == 1.0, f"{task_id}: the oracle failed\n{explain(info)}"

    for number, wrong in enumerate(oracle.wrong, start=1):
        if list(wrong[:-1]) == list(oracle.actions[:-1]) and "program_html" not in config.eval.eval_types:
            # The same steps as the oracle's reach the same page, which these evaluators leave as it is
            # (they read only the answer and the URL): score the other answer there, saving a run.
            answer = check_sequence(wrong)[-1].answer
            score, _done, info = await task.validate(env.session.page, answer)
        else:
            score, info = await run_oracle(env, sites.task(config), wrong)
        assert score == 0.0, f"{task_id}: wrong attempt {number} passed\n{explain(info)}"


async def test_an_oracle_with_unresolved_placeholders_is_refused_before_running():
    class NoEnv:
        async def reset(self, task):
            raise AssertionError("must not run")

    class Task:
        id = "t1"

    with pytest.raises(OracleError, match=r"__SHOPPING__.*oracle_of\(config, site_urls\)"):
        await run_oracle(NoEnv(), Task(), ["goto('__SHOPPING__/cart')", "send_msg_to_user('x')"])


async def test_a_storage_state_for_an_unknown_account_names_the_accounts(sites):
    config = dataclasses.replace(SUITE[0], storage_state="./.auth/shop.nobody.json")
    with pytest.raises(TaskConfigError, match="names no account of shop; accounts: emma.lopez"):
        await sites.ensure_storage_state(config, browser=None)


def review_count(sites: LocalSites) -> int:
    with sqlite3.connect(sites.server("shop").db_path) as db:
        return db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]


async def test_reset_state_undoes_a_write_to_the_tasks_site(sites, resolved):
    task = sites.task(next(config for config in resolved.values() if list(config.sites) == ["shopping"]))
    assert isinstance(task, Task)
    pristine = review_count(sites)
    with sqlite3.connect(sites.server("shop").db_path) as db:
        db.execute("DELETE FROM reviews")
    assert review_count(sites) == 0

    assert await task.reset_state() is True
    assert review_count(sites) == pristine


@pytest.mark.parametrize("task", [
    UrlTask(id="url", start_url="bundled:demo", goal="look"),
    MiniWoBTask("click-test"),
    WebArenaTask(SUITE[0]),
    LocalTask(SUITE[0]),  # no sites to reset
], ids=["url", "miniwob", "webarena", "local-without-sites"])
async def test_a_task_without_state_of_its_own_has_nothing_to_reset(task):
    assert isinstance(task, Task)
    assert await task.reset_state() is False
