"""The MiniWoB++ adapter on real headless Chromium: every task loads, seeds reproduce a task, the page's
own reward comes back, and a scripted player using only observations and the action grammar wins."""
from __future__ import annotations

import asyncio

import pytest

from envs.env import BrowserEnv
from envs.miniwob import MINIWOB_TASKS, MiniWoBTask, miniwob_html_dir, task_name
from envs.suites.miniwob_oracle import PLAYERS
from envs.types import Observation, Task

ORACLE_SEEDS = range(5)
ORACLE_MAX_STEPS = 12
CLICK_TEST_URL = (miniwob_html_dir() / "click-test.html").as_uri()


@pytest.fixture(scope="module")
async def env():
    environment = BrowserEnv()
    yield environment
    await environment.close()


def test_task_list_is_browsergyms_125_and_every_page_ships():
    assert len(MINIWOB_TASKS) == len(set(MINIWOB_TASKS)) == 125
    pages = miniwob_html_dir()
    assert [name for name in MINIWOB_TASKS if not (pages / f"{name}.html").is_file()] == []


def test_task_names_ids_and_bad_arguments():
    with pytest.raises(ValueError, match="unknown MiniWoB\\+\\+ task 'click-buton'.*click-button"):
        MiniWoBTask("click-buton")
    assert task_name("miniwob.click-test") == "click-test"
    assert MiniWoBTask("miniwob.click-test", seed=3).id == "miniwob.click-test.seed3"
    assert isinstance(MiniWoBTask("click-test"), Task)
    with pytest.raises(ValueError, match="episode_max_ms"):
        MiniWoBTask("click-test", episode_max_ms=0)


def test_missing_package_says_how_to_install(monkeypatch):
    import envs.miniwob as miniwob_module

    monkeypatch.setattr(miniwob_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install miniwob"):
        miniwob_module.miniwob_html_dir()


@pytest.mark.parametrize("name", MINIWOB_TASKS)
async def test_every_task_loads_with_a_goal_and_is_not_done(env: BrowserEnv, name: str):
    task = MiniWoBTask(name, seed=0)
    obs, info = await env.reset(task)
    assert isinstance(info["goal"], str) and info["goal"].strip()
    assert info["task_id"] == f"miniwob.{name}.seed0"
    assert obs.url == task.url
    reward, done, details = await task.validate(env.session.page, None)
    assert (reward, done, details["success"]) == (0.0, False, False), details


def _page_signature(obs: Observation) -> list[tuple[str, str]]:
    return [(e.role, e.name) for e in obs.elements]


@pytest.mark.parametrize("name", ["enter-text", "login-user", "click-checkboxes", "choose-list", "click-button"])
async def test_same_seed_same_task_other_seed_other_task(env: BrowserEnv, name: str):
    first, first_info = await env.reset(MiniWoBTask(name, seed=7))
    again, again_info = await env.reset(MiniWoBTask(name, seed=7))
    assert again_info["goal"] == first_info["goal"]
    assert _page_signature(again) == _page_signature(first)
    other, other_info = await env.reset(MiniWoBTask(name, seed=8))
    assert (other_info["goal"], _page_signature(other)) != (first_info["goal"], _page_signature(first))


async def _play(env: BrowserEnv, name: str, seed: int) -> tuple[dict, list[str]]:
    player = PLAYERS[name]
    obs, info = await env.reset(MiniWoBTask(name, seed=seed))
    actions: list[str] = []
    for _ in range(ORACLE_MAX_STEPS):
        action = player(info["goal"], obs)
        assert action is not None, f"{name} seed {seed}: the player found nothing to do in {obs.elements}"
        actions.append(action)
        obs, reward, done, _, step_info = await env.step(action)
        if done:
            return step_info, actions
    raise AssertionError(f"{name} seed {seed}: not done after {actions}; last error {obs.last_action_error}")


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
@pytest.mark.parametrize("name", sorted(PLAYERS))
async def test_scripted_player_wins_through_the_action_grammar(env: BrowserEnv, name: str, seed: int):
    info, actions = await _play(env, name, seed)
    assert info["raw_reward"] == 1.0 and info["success"], (info, actions)


@pytest.mark.parametrize(
    ("name", "wrong_actions"),
    [
        # The wrong name typed, then Submit.
        ("enter-text", lambda goal, obs: ["fill({!r}, 'not the name')".format(_first(obs, "textbox")), _submit(obs)]),
        # Of two buttons, the one the goal does not ask for.
        ("click-test-2", lambda goal, obs: [_click_other_button(goal, obs)]),
    ],
)
async def test_wrong_solution_gets_raw_reward_minus_one(env: BrowserEnv, name, wrong_actions):
    obs, info = await env.reset(MiniWoBTask(name, seed=1))
    for action in wrong_actions(info["goal"], obs):
        obs, reward, done, _, step_info = await env.step(action)
        assert obs.last_action_error is None, obs.last_action_error
    assert done and reward == 0.0
    assert step_info["raw_reward"] == -1.0 and not step_info["success"]


def _first(obs: Observation, role: str) -> str:
    return next(e.id for e in obs.elements if e.id and e.role == role)


def _submit(obs: Observation) -> str:
    return "click({!r})".format(next(e.id for e in obs.elements if e.role == "button" and e.name == "Submit"))


def _click_other_button(goal: str, obs: Observation) -> str:
    wanted = goal.removeprefix("Click button ").rstrip(".")
    return "click({!r})".format(next(e.id for e in obs.elements if e.role == "button" and e.name != wanted))


async def test_time_limit_is_what_the_task_asks_for(env: BrowserEnv):
    short = MiniWoBTask("click-test", seed=0, episode_max_ms=300)
    await env.reset(short)
    await asyncio.sleep(0.6)
    reward, done, info = await short.validate(env.session.page, None)
    assert done and info["raw_reward"] == -1.0 and info["reason"] == "timed out"

    default = MiniWoBTask("click-test", seed=0)
    await env.reset(default)
    await asyncio.sleep(0.6)
    assert (await default.validate(env.session.page, None))[1] is False


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("goto('about:blank')", "left the task page for about:blank"),
        (f"goto({CLICK_TEST_URL!r})", "task page was reloaded"),
        ("tab_close()", "tab was closed"),
    ],
)
async def test_leaving_the_task_page_ends_the_episode_with_a_reason(env: BrowserEnv, action, reason):
    await env.reset(MiniWoBTask("click-test", seed=0))
    obs, reward, done, _, info = await env.step(action)
    assert obs.last_action_error is None
    assert (reward, done, info["success"]) == (0.0, True, False)
    assert reason in info["reason"]
