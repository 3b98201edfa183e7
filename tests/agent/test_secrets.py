"""Secrets: the page gets the value, the model and the run directory only ever see the name."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main
from agent.config import PlannerConfig
from agent.llm.scripted import ScriptedLLM
from agent.loop import run_task
from envs.env import BrowserEnv
from envs.secrets import Secrets, SecretsError, load_secrets_file, parse_secret
from envs.tasks import UrlTask

USER, PASSWORD, API_KEY = "alice-3f9q", "hunter2-Zx8!", "sk-fake-0123456789abcdef"
GOAL = "Log in as {{user}} with password {{password}}"
# The page checks what was typed; its verdict and greeting show in later observations.
LOGIN_PAGE = """<title>Login</title>
<input aria-label="user"> <input aria-label="password" type="password">
<button onclick="
  const [user, pass] = document.querySelectorAll('input');
  document.getElementById('out').textContent = 'Welcome, ' + user.value + '! password '
    + (pass.value === atob('%s') ? 'accepted' : 'rejected');">log in</button>
<p id="out"></p>"""


@pytest.fixture
def login_page(tmp_path: Path) -> Path:
    import base64

    page = tmp_path / "login.html"
    page.write_text(LOGIN_PAGE % base64.b64encode(PASSWORD.encode()).decode())
    return page


class RecordingLLM(ScriptedLLM):
    """A scripted model that keeps every prompt it was sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompts: list[str] = []

    async def complete(self, role: Any, messages: Any, **kwargs: Any) -> Any:
        self.prompts.append(json.dumps(messages, ensure_ascii=False))
        return await super().complete(role, messages, **kwargs)


def every_file_text(run_dir: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def test_secret_flags_and_files(tmp_path: Path) -> None:
    assert parse_secret("password=a=b") == ("password", "a=b")
    with pytest.raises(SecretsError, match="NAME=VALUE"):
        parse_secret("no-equals-sign")
    lines = tmp_path / "secrets.env"
    lines.write_text("# logins\nuser=bob\n\npassword = s3cret\n")
    assert load_secrets_file(lines) == {"user": "bob", "password": " s3cret"}
    as_json = tmp_path / "secrets.json"
    as_json.write_text(json.dumps({"user": "carol"}))
    secrets = Secrets.from_args(["user=dave"], [as_json])  # a flag wins over the file
    assert secrets.values == {"user": "dave"}
    bad = tmp_path / "bad.env"
    bad.write_text("user=bob\njust words\n")
    with pytest.raises(SecretsError, match="line 2"):
        load_secrets_file(bad)


def test_names_become_values_only_for_typing_and_values_become_names_everywhere() -> None:
    secrets = Secrets({"user": "bob", "password": "pw-bob"})
    assert secrets.substitute("{{user}}:{{password}} {{unknown}}") == "bob:pw-bob {{unknown}}"
    assert secrets.mask("hello bob, your pw-bob") == "hello {{user}}, your {{password}}"  # longest first


async def test_a_secret_reaches_the_page_but_not_the_model_or_the_run_dir(
    login_page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    env = BrowserEnv(secrets=Secrets({"user": USER, "password": PASSWORD}))
    async with env:
        obs, _ = await env.reset(UrlTask(id="login", start_url=str(login_page), goal=GOAL))
        ids = {e.name: e.id for e in obs.elements if e.id}
        llm = RecordingLLM({"policy": [f"fill('{ids['user']}', '{{{{user}}}}')",
                                       f"fill('{ids['password']}', '{{{{password}}}}')",
                                       f"click('{ids['log in']}')", "send_msg_to_user('logged in')"]})
        config = PlannerConfig(strategy="reactive", max_steps=6)
        result = await run_task(UrlTask(id="login", start_url=str(login_page), goal=GOAL), llm, env, config,
                                tmp_path / "run", on_step=lambda _: None)
        assert env.session.page is not None
        page_text = await env.session.page.inner_text("#out")
    assert result.answer == "logged in"
    assert page_text == f"Welcome, {USER}! password accepted"  # the page got the real values

    prompts = "\n".join(llm.prompts)
    assert "{{user}}" in prompts and "Welcome, {{user}}! password accepted" in prompts
    assert USER not in prompts and PASSWORD not in prompts

    files = every_file_text(tmp_path / "run")
    assert any(p.name == "trace.jsonl" for p in files) and any(p.suffix == ".png" for p in files)
    for path, data in files.items():
        for value in (USER, PASSWORD, API_KEY):
            assert value.encode() not in data, f"{value!r} written to {path}"
    # The trace keeps the secret's name, which is what the model wrote and a reader needs.
    trace = next(data for path, data in files.items() if path.name == "trace.jsonl").decode()
    assert "'{{password}}')" in trace


def test_cli_run_types_secrets_without_writing_them(
    login_page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    assert main(["observe", str(login_page), "--json"]) == 0
    ids = {e["name"]: e["id"] for e in json.loads(capsys.readouterr().out)["elements"] if e["id"]}
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"policy": [f"fill('{ids['user']}', '{{{{user}}}}')",
                                             f"fill('{ids['password']}', '{{{{password}}}}')",
                                             f"click('{ids['log in']}')", "send_msg_to_user('done')"]}))
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"password": PASSWORD}))

    code = main(["run", "--url", str(login_page), "--goal", GOAL, "--model", f"scripted:{script}",
                 "--strategy", "reactive", "--secret", f"user={USER}", "--secrets-file", str(secrets_file),
                 "--out", str(tmp_path / "run")])

    assert code == 0
    trace = (tmp_path / "run" / "task" / "trace.jsonl").read_text()
    assert "Welcome, {{user}}! password accepted" in trace
    printed = capsys.readouterr()
    for value in (USER, PASSWORD, API_KEY):
        assert value not in printed.out + printed.err
        for path, data in every_file_text(tmp_path / "run").items():
            assert value.encode() not in data, f"{value!r} written to {path}"


def test_cli_refuses_a_malformed_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--url", "bundled:demo", "--goal", "x", "--secret", "oops", "--out", str(tmp_path)]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
