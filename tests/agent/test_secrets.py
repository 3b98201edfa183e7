"""Secrets: the page gets the value, the model and the run directory only ever see the name."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import socket
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import pytest
from PIL import Image

from agent.cli.main import main
from agent.config import PlannerConfig
from agent.llm.fake_server import Failure, FakeOpenAIServer
from agent.llm.scripted import ScriptedLLM
from agent.loop import run_task
from bench.faults import secret_forms
from envs.env import BrowserEnv
from envs.secrets import Masker, Secrets, SecretsError, load_secrets_file, parse_secret
from envs.tasks import UrlTask, url_task_id
from tests.pages.page_server import PageServer

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
    trace = (tmp_path / "run" / "login" / "trace.jsonl").read_text()
    assert "Welcome, {{user}}! password accepted" in trace
    printed = capsys.readouterr()
    for value in (USER, PASSWORD, API_KEY):
        assert value not in printed.out + printed.err
        for path, data in every_file_text(tmp_path / "run").items():
            assert value.encode() not in data, f"{value!r} written to {path}"


def test_cli_refuses_a_malformed_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--url", "bundled:demo", "--goal", "x", "--secret", "oops", "--out", str(tmp_path)]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


# ----------------------------------------------------------------------------- encoded forms

# A secret with every character some writer escapes: quotes, a backslash, a slash, non-ASCII (also
# outside the BMP), and characters URLs and HTML encode.
ODD = "Zq \"7\\é/ü+&=%!' <x> 🔑"


def found_forms(data: bytes, *values: str) -> list[bytes]:
    return sorted(form for value in values for form in secret_forms(value) if form in data)


def every_file_and_member(run_dir: Path) -> dict[str, bytes]:
    """Each file under `run_dir`, and each member of its zip files (named path:member)."""
    files: dict[str, bytes] = {}
    for path in (p for p in run_dir.rglob("*") if p.is_file()):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                files.update({f"{path}:{name}": archive.read(name) for name in archive.namelist()})
        else:
            files[str(path)] = path.read_bytes()
    return files


def test_every_form_a_file_holds_a_secret_in_is_masked() -> None:
    masker = Masker({ODD: "{{odd}}"})
    written = [ODD, quote(ODD), quote(ODD, safe=""), quote_plus(ODD), quote(quote(ODD, safe=""), safe=""),
               quote(ODD).lower(), json.dumps(ODD), json.dumps(ODD, ensure_ascii=False), repr(ODD), html.escape(ODD),
               html.escape(ODD).replace("&#x27;", "&#39;"), base64.b64encode(ODD.encode()).decode(),
               base64.urlsafe_b64encode(ODD.encode()).decode()]
    for form in written:
        masked = masker.mask(f"before {form} after")
        assert found_forms(masked.encode(), ODD) == [], form
        assert masked.startswith("before ") and masked.endswith(" after")  # the text around it is kept
    for prefix in (b"", b"a", b"ab"):  # base64 of a longer text, the secret at each byte offset
        encoded = base64.b64encode(prefix + ODD.encode() + b"-tail").decode()
        assert found_forms(masker.mask(encoded).encode(), ODD) == []
    har_body = {"mimeType": "application/octet-stream", "encoding": "base64",
                "text": base64.b64encode(b"echo:" + ODD.encode()).decode()}
    assert base64.b64decode(masker.mask_data(har_body)["text"]) == b"echo:{{odd}}"  # decoded, masked, encoded
    assert Masker().mask("GET http://ann:pa55@h.test/v1 and https://tok3n@h.test/") == (
        "GET http://********@h.test/v1 and https://********@h.test/")



def test_a_secret_of_200000_characters_is_masked_quickly_whole_and_in_pieces() -> None:
    long = (ODD + "".join(hashlib.sha256(bytes(n)).hexdigest() for n in range(6_300)))[:200_000]
    masker = Masker({long: "{{long}}"})  # a pattern of this value took more than ten minutes to compile
    cut = f"fill('e1', '{long[:150]} ... [trimmed 199700 characters] {long[-150:]}')"
    written = [long, quote(long, safe=""), json.dumps(long)[1:-1], html.escape(long),
               base64.b64encode(long.encode()).decode()]
    masked = [masker.mask(f"before {form} after") for form in written]
    assert masked == ["before {{long}} after"] * len(written)
    assert masker.mask(cut) == "fill('e1', '{{long}} ... [trimmed 199700 characters] {{long}}')"
    assert masker.mask(long[:10]) == long[:10]  # too short a piece to tell from other text

ECHO_PAGE = """<title>Echo</title>
<input aria-label="note"> <button onclick="send()">send</button> <p id="out"></p>
<script>
async function send() {
  const note = document.querySelector('input').value;
  const raw = await fetch('/echo', {method: 'POST', body: note});
  await fetch('/echo.json?' + new URLSearchParams({note}));
  document.getElementById('out').textContent = 'echoed ' + (await raw.arrayBuffer()).byteLength + ' bytes';
}
</script>"""


def test_cli_run_keeps_no_form_of_a_secret_the_server_echoes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The site echoes the typed secret as application/octet-stream (base64 in network.har) and as
    JSON; with --har and --playwright-trace, no file, zip member or printed line holds it in any form."""
    site = PageServer({"/": ECHO_PAGE}, echoes={
        "/echo": lambda body: ("application/octet-stream", body),
        "/echo.json": lambda query: ("application/json", json.dumps(parse_qs(query.decode())).encode())})
    try:
        script = tmp_path / "model.json"
        script.write_text(json.dumps({"policy": ["fill('e1', '{{odd}}')", "click('e2')", "send_msg_to_user('ok')"]}))
        run = ["run", "--url", site.url, "--goal", "send {{odd}}", "--model", f"scripted:{script}",
               "--strategy", "reactive", "--secret", f"odd={ODD}", "--har", "--playwright-trace",
               "--out", str(tmp_path / "run")]
        assert main(run) == 0
        assert main(["show", str(tmp_path / "run" / url_task_id(site.url))]) == 0
    finally:
        site.close()
    assert any(path.startswith("/echo.json?") for path in site.hits)  # the page did send it
    printed = capsys.readouterr()
    files = every_file_and_member(tmp_path / "run")
    assert {Path(p).name for p in files} >= {"network.har", "trace.jsonl", "result.json", "report.html"}
    leaks = {path: found_forms(data, ODD) for path, data in
             {**files, "stdout": printed.out.encode(), "stderr": printed.err.encode()}.items()}
    assert {path: forms for path, forms in leaks.items() if forms} == {}
    # The HAR stays a readable HAR: the echoed body is still base64, of the masked text.
    har = json.loads((tmp_path / "run" / url_task_id(site.url) / "network.har").read_text())
    echo = next(e for e in har["log"]["entries"] if e["request"]["url"].endswith("/echo"))
    assert echo["response"]["content"]["encoding"] == "base64"
    assert base64.b64decode(echo["response"]["content"]["text"]) == b"********"


USERINFO_PASSWORD = "pa$$ w0rd/ü"


@pytest.mark.parametrize("endpoint", ["rejects the call", "is down"])
def test_cli_base_url_credentials_reach_no_file_and_no_message(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--base-url http://user:password@host/v1`: the endpoint gets the credentials; the error naming the
    endpoint, in result.json, the trace and stderr, does not hold them."""
    with FakeOpenAIServer(["unused"], failures=[Failure(401)]) as server:
        base_url = server.base_url if endpoint == "rejects the call" else f"http://127.0.0.1:{free_port()}/v1"
        with_userinfo = base_url.replace("://", f"://ann:{quote(USERINFO_PASSWORD, safe='')}@")
        code = main(["run", "--url", "bundled:demo", "--goal", "click", "--model", "openai:fake-model",
                     "--base-url", with_userinfo, "--strategy", "reactive", "--out", str(tmp_path / "run")])
    printed = capsys.readouterr()
    assert code == 2 and "forethought: " in printed.err
    assert base_url in printed.err  # the message still says which endpoint
    if endpoint == "rejects the call":
        expected = base64.b64encode(f"ann:{USERINFO_PASSWORD}".encode()).decode()
        assert server.requests[0].headers["authorization"] == f"Basic {expected}"
    result = json.loads((tmp_path / "run" / "demo" / "result.json").read_text())
    assert base_url in result["error"]
    leaks = {path: found_forms(data, USERINFO_PASSWORD) for path, data in
             {**every_file_and_member(tmp_path / "run"), "stdout": printed.out.encode(),
              "stderr": printed.err.encode()}.items()}
    assert {path: forms for path, forms in leaks.items() if forms} == {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------- screenshots

FIELDS_PAGE = """<title>Fields</title>
<input aria-label="code" oninput="document.getElementById('echo').textContent = 'Your code: ' + this.value">
<input aria-label="name">
<p id="echo">nothing yet</p>"""


async def test_screenshots_cover_what_shows_a_secret(tmp_path: Path) -> None:
    """A visible text field holding a secret, and text showing it, are covered in the screenshot; the
    field beside it holding other text is not."""
    page_file = tmp_path / "fields.html"
    page_file.write_text(FIELDS_PAGE)
    async with BrowserEnv(secrets=Secrets({"code": "WXYZ-secret-4711"})) as env:
        await env.reset(UrlTask(id="fields", start_url=str(page_file), goal="type the code"))
        await env.step("fill('e1', '{{code}}')")
        await env.step("fill('e2', 'Ann Smith')")
        page = env.session.page
        assert page is not None
        await env.screenshot(str(tmp_path / "masked.png"))
        await page.screenshot(path=str(tmp_path / "plain.png"))
        boxes = {name: await page.locator(selector).bounding_box()
                 for name, selector in {"code": "input >> nth=0", "name": "input >> nth=1", "echo": "#echo"}.items()}
    masked, plain = (Image.open(tmp_path / f"{name}.png").convert("RGB") for name in ("masked", "plain"))
    assert masked.size == plain.size

    def region(image: Image.Image, name: str) -> Image.Image:
        box = boxes[name]
        assert box is not None
        return image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))

    for shows_the_secret in ("code", "echo"):
        assert region(masked, shows_the_secret).tobytes() != region(plain, shows_the_secret).tobytes()
        colors = region(masked, shows_the_secret).getcolors()
        assert colors is not None and len(colors) == 1  # one flat colour: no glyph of the secret left
        assert len(region(plain, shows_the_secret).getcolors() or []) > 1  # unmasked, it had text
    assert region(masked, "name").tobytes() == region(plain, "name").tobytes()
