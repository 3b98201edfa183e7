"""Settings precedence (defaults < env < flags), per-role fallback, and model specs → clients."""
from __future__ import annotations

import json
import os

import pytest

from agent.llm.openai_client import OpenAIChatLLM
from agent.llm.scripted import ScriptedLLM
from agent.llm.settings import ConfigError, RoutedLLM, Settings, build_llm, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the env vars they set themselves."""
    for name in list(os.environ):
        if name.startswith(("FORETHOUGHT_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.fixture
def script_file(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"policy": ["click('e1')"], "verifier": ["1.0"]}))
    return path


def test_defaults_then_env_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().model is None
    assert Settings().max_concurrency == 16

    monkeypatch.setenv("FORETHOUGHT_MODEL", "openai:gpt-4o")
    monkeypatch.setenv("FORETHOUGHT_BUDGET_TOKENS", "20000")
    monkeypatch.setenv("FORETHOUGHT_MAX_CONCURRENCY", "4")
    settings = load_settings()
    assert (settings.model, settings.budget_tokens, settings.max_concurrency) == ("openai:gpt-4o", 20000, 4)

    flagged = load_settings(model="openai:gpt-4o-mini", budget_tokens=None, budget_usd=0.5)
    assert flagged.model == "openai:gpt-4o-mini"  # a flag beats the env var
    assert flagged.budget_tokens == 20000  # a flag of None was not given
    assert flagged.budget().max_usd == 0.5 and flagged.budget().max_tokens == 20000


def test_each_role_falls_back_to_the_shared_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-shared")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://shared.example/v1")
    monkeypatch.setenv("FORETHOUGHT_MODEL", "openai:gpt-4o")
    monkeypatch.setenv("FORETHOUGHT_WORLD_MODEL_MODEL", "openai:gpt-4o-mini")
    monkeypatch.setenv("FORETHOUGHT_VERIFIER_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("FORETHOUGHT_VERIFIER_TEMPERATURE", "0")
    settings = load_settings(policy_samples=5)

    policy, world, verifier = (settings.role(r) for r in ("policy", "world_model", "verifier"))
    assert (policy.model, policy.base_url, policy.api_key, policy.samples) == (
        "openai:gpt-4o", "http://shared.example/v1", "sk-shared", 5)
    assert (world.model, world.base_url, world.samples) == ("openai:gpt-4o-mini", "http://shared.example/v1", 1)
    assert (verifier.model, verifier.base_url, verifier.temperature) == (
        "openai:gpt-4o", "http://127.0.0.1:8000/v1", 0.0
    )
    assert "sk-shared" not in repr(settings)  # keys stay out of logs


def test_forethought_base_url_beats_openai_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-var/v1")
    assert load_settings().base_url == "http://openai-var/v1"
    monkeypatch.setenv("FORETHOUGHT_BASE_URL", "http://forethought-var/v1")
    assert load_settings().base_url == "http://forethought-var/v1"
    assert load_settings(base_url="http://flag/v1").base_url == "http://flag/v1"


def test_bad_values_and_unknown_flags_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORETHOUGHT_BUDGET_CALLS", "many")
    with pytest.raises(ConfigError, match="FORETHOUGHT_BUDGET_CALLS='many'"):
        load_settings()
    monkeypatch.delenv("FORETHOUGHT_BUDGET_CALLS")
    with pytest.raises(ConfigError, match="--max-concurrency 0: Input should be greater than or equal to 1"):
        load_settings(max_concurrency=0)
    with pytest.raises(TypeError, match="polcy_model"):
        load_settings(polcy_model="openai:x")


def test_an_endpoint_without_a_model_says_what_to_do() -> None:
    # With nothing configured the local model is the default; an endpoint alone needs a model name.
    with pytest.raises(ConfigError) as caught:
        build_llm(Settings(base_url="http://127.0.0.1:9/v1"))
    message = str(caught.value)
    assert message.startswith("no model configured") and "--model openai:gpt-4o" in message
    assert "OPENAI_API_KEY" in message and "scripted:FILE" in message and "\n" not in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("anthropic:claude", "unknown model scheme 'anthropic'.*known schemes: openai, scripted"),
        ("gpt-4o", "needs a scheme.*openai:gpt-4o"),
        ("openai:", "needs a scheme"),
    ],
)
def test_bad_model_specs(spec: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        build_llm(Settings(model=spec, api_key="sk-test"))


def test_openai_without_a_key_needs_one_unless_the_endpoint_is_local() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        build_llm(Settings(model="openai:gpt-4o"))
    local = build_llm(Settings(model="openai:llama3.1:8b", base_url="http://127.0.0.1:11434/v1"))
    client = local.clients["policy"]
    assert isinstance(client, OpenAIChatLLM) and client.model == "llama3.1:8b"


def test_roles_route_to_their_own_clients_sharing_endpoints(script_file) -> None:
    settings = Settings(
        model="openai:gpt-4o",
        api_key="sk-test",
        world_model_model="openai:gpt-4o-mini",
        verifier_base_url="http://127.0.0.1:9999/v1",
        max_concurrency=3,
    )
    llm = build_llm(settings)
    policy, world, verifier = (llm.clients[r] for r in ("policy", "world_model", "verifier"))
    assert isinstance(policy, OpenAIChatLLM) and isinstance(world, OpenAIChatLLM)
    assert isinstance(verifier, OpenAIChatLLM)
    assert (policy.model, world.model, verifier.model) == ("gpt-4o", "gpt-4o-mini", "gpt-4o")
    assert policy.client is world.client  # same endpoint, one AsyncOpenAI
    assert verifier.client is not policy.client and str(verifier.client.base_url).startswith("http://127.0.0.1:9999")
    assert verifier.client.max_retries == 0  # our retry loop, not the SDK's
    assert policy.semaphore is verifier.semaphore  # one concurrency limit across roles

    scripted = build_llm(Settings(model=f"scripted:{script_file}"))
    assert isinstance(scripted.clients["policy"], ScriptedLLM)
    assert scripted.clients["policy"] is scripted.clients["verifier"]  # one script, answers per role


async def test_only_the_roles_a_strategy_needs_must_be_configured(script_file) -> None:
    settings = Settings(policy_model=f"scripted:{script_file}")
    with pytest.raises(ConfigError, match="no model configured for role 'world_model'.*--world-model-model"):
        build_llm(settings)
    llm = build_llm(settings, roles=("policy",))
    assert isinstance(llm, RoutedLLM)
    answers = await llm.complete("policy", [{"role": "user", "content": "go"}])
    assert answers[0].text == "click('e1')"
    with pytest.raises(ConfigError, match="no model configured for role 'verifier'"):
        await llm.complete("verifier", [{"role": "user", "content": "score"}])


def test_missing_script_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="scripted model file not found"):
        build_llm(Settings(model=f"scripted:{tmp_path / 'nope.json'}"))
