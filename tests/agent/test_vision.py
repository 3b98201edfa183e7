"""--vision through the real command line on a local page: the chosen roles' prompts carry the viewport's
set-of-marks screenshot as an image part in the step's shared prefix (the others' stay text), the marks
sit on the elements' boxes, the trace keeps the picture as a file, its tokens are counted and priced,
and a model that takes no images is one clear line."""
from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agent.cli.main import main
from agent.llm.fake_server import FakeOpenAIServer
from agent.llm.pricing import BUILTIN_PRICES
from envs.browser import BrowserConfig
from envs.marks import MARK_COLORS
from envs.tokens import count_tokens
from tests.envs.test_marks import PAGE, pixels_of
from traces.report import write_report
from traces.schema import read_trace
from world_model.messages import PNG_DATA_URL, content_text, image_urls

VIEWPORT_TOKENS = 1105  # 1280 x 720: no scaling, 3 x 2 tiles of 512 px: 85 + 6 * 170
ANSWER = "send_msg_to_user('done')"
PREDICTION = {"changes": "the task is reported done", "url": "", "appear": [], "disappear": []}


def answer(body: dict[str, Any]) -> str:
    """The endpoint's answer to a request, by the schema it asks for."""
    schema = body.get("response_format", {}).get("json_schema", {}).get("name")
    if schema == "candidates":
        return json.dumps({"candidates": [{"action": ANSWER, "reason": "done"},
                                          {"action": "click('e2')", "reason": "Two"}]})
    if schema == "prediction":
        return json.dumps(PREDICTION)
    judged = content_text(body["messages"][-1]["content"]).split("<imagined>")[-1]
    done = f"Action: {ANSWER}" in judged
    return json.dumps({"reason": "it does what was asked", "verdict": "complete" if done else "on track"})


def schema_of(body: dict[str, Any]) -> str:
    return str(body["response_format"]["json_schema"]["name"])


def picture_of(body: dict[str, Any]) -> bytes:
    [url] = image_urls(body["messages"])
    assert url.startswith(PNG_DATA_URL)
    return base64.b64decode(url.removeprefix(PNG_DATA_URL))


@pytest.fixture
def site() -> Iterator[str]:
    from tests.pages.page_server import PageServer

    server = PageServer({"/": PAGE})
    yield server.url + "/"
    server.close()


def run(site: str, out: Path, *flags: str) -> list[str]:
    return ["run", "--url", site, "--goal", "Press Two", "--task-id", "vision", "--strategy", "dreamer", "-k", "2",
            "--samples", "1", "--max-steps", "2", "--out", str(out), *flags]


def test_the_chosen_roles_see_the_marked_viewport_in_the_shared_prefix_and_the_trace_names_its_file(
        site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAIServer(answers=answer) as server:
        code = main(run(site, tmp_path / "run", "--model", "openai:gpt-4o", "--base-url", server.base_url,
                        "--vision", "policy,verifier"))
        requests = server.chat_requests
    assert code == 0
    by_schema: dict[str, list[dict[str, Any]]] = {}
    for body in requests:
        by_schema.setdefault(schema_of(body), []).append(body)
    assert sorted((name, len(bodies)) for name, bodies in by_schema.items()) == [
        ("candidates", 1), ("prediction", 2), ("verdict", 2)]
    assert all(not image_urls(body["messages"]) for body in by_schema["prediction"])  # world_model: not chosen
    seeing = by_schema["candidates"] + by_schema["verdict"]

    # One picture, the viewport's, after the page's text and before each role's own part: the step's
    # prompts share their start, picture included (endpoints' prefix caches hit).
    picture = picture_of(seeing[0])
    assert all(picture_of(body) == picture for body in seeing)
    marked = Image.open(io.BytesIO(picture))
    assert marked.format == "PNG" and marked.size == (BrowserConfig().viewport_width, BrowserConfig().viewport_height)
    shared = [(body["messages"][0], body["messages"][1]["content"][:2]) for body in seeing]
    assert all(prefix == shared[0] for prefix in shared)
    first_text, image = shared[0][1]
    assert first_text["type"] == "text" and first_text["text"].split("</page>")[1].startswith("\n\nA screenshot")
    assert image["type"] == "image_url"
    text_only = by_schema["prediction"][0]["messages"][1]["content"]
    assert text_only.startswith(first_text["text"].split("</page>")[0] + "</page>\n\nYour part")

    task_dir = tmp_path / "run" / "vision"
    trace = read_trace(task_dir)
    boxes = trace.observations[0]["boxes"]  # where the recorder's own screenshot found each element
    assert sorted(boxes) == ["e1", "e2", "e3"]
    for number, (element_id, box) in enumerate(boxes.items()):
        color = MARK_COLORS[number % len(MARK_COLORS)]
        assert pixels_of(marked, color, box) > 100, element_id  # its mark lies inside its own box
        assert all(pixels_of(marked, color, other) == 0 for other_id, other in boxes.items() if other_id != element_id)

    # The trace names the picture's file and holds no image inline.
    for path in task_dir.rglob("*"):
        if path.suffix in (".jsonl", ".json"):
            text = path.read_text(encoding="utf-8")
            assert "base64" not in text and "iVBORw0KGgo" not in text, path
    recorded = [part["image_url"] for messages in trace.prompts.values() for m in messages
                if isinstance(m["content"], list) for part in m["content"] if part["type"] == "image_url"]
    assert recorded and all(part == {"file": "steps/000-marks.png"} for part in recorded)
    assert (task_dir / "steps" / "000-marks.png").read_bytes() == picture

    # The picture's tokens are in the usage the endpoint reported and the run counts, priced as input.
    price = BUILTIN_PRICES["gpt-4o"]
    assert len(trace.calls) == len(requests)
    for call in trace.calls:
        messages = trace.prompts[call["prompt_hash"]]  # as sent, the picture named by its file
        text_tokens = sum(count_tokens(content_text(m["content"])) for m in messages)
        pictures = len(image_urls(messages))
        assert pictures == (call["role"] != "world_model")
        usage = call["usage"]
        assert usage["prompt_tokens"] == text_tokens + pictures * VIEWPORT_TOKENS
        assert usage["cost_usd"] == pytest.approx(
            (usage["prompt_tokens"] * price.input + usage["completion_tokens"] * price.output) / 1e6)
    result = json.loads((task_dir / "result.json").read_text())
    assert result["usage"]["total"]["prompt_tokens"] == sum(c["usage"]["prompt_tokens"] for c in trace.calls)


def test_a_scripted_model_is_matched_on_the_text_and_counts_the_picture(
        site: str, tmp_path: Path) -> None:
    script = tmp_path / "answers.json"
    script.write_text(json.dumps({
        "policy": [{"when": "Task: Press Two", "answer": answer({"response_format": {"json_schema": {
            "name": "candidates"}}}), "repeat": True}],
        "world_model": [{"when": "Action: ", "answer": json.dumps(PREDICTION), "repeat": True}],
        "verifier": [{"when": "Predicted outcome: the task is reported done", "answer": json.dumps(
            {"reason": "done", "verdict": "complete"}), "repeat": True}],
    }))
    assert main(run(site, tmp_path / "run", "--model", f"scripted:{script}", "--vision")) == 0
    trace = read_trace(tmp_path / "run" / "vision")
    assert {call["role"] for call in trace.calls} == {"policy", "world_model", "verifier"}
    for call in trace.calls:
        messages = trace.prompts[call["prompt_hash"]]
        text_tokens = sum(count_tokens(content_text(m["content"])) for m in messages)
        assert call["usage"]["prompt_tokens"] == text_tokens + VIEWPORT_TOKENS, call["role"]
    assert json.loads((tmp_path / "run" / "vision" / "result.json").read_text())["answer"] == "done"
    # The report shows each prompt as text with its picture named by file, not as a list of parts.
    page = html.unescape(write_report(tmp_path / "run" / "vision").read_text(encoding="utf-8"))
    assert "[picture: steps/000-marks.png]" in page and "'image_url'" not in page and "'type': 'text'" not in page


def one_line_refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("forethought: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip().removeprefix("forethought: ")


def test_a_model_that_takes_no_images_is_one_clear_line(site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAIServer(answers=answer, reject_images=True) as server:
        base_url = server.base_url
        message = one_line_refusal(run(site, tmp_path / "run", "--model", "openai:gpt-3.5-turbo", "--base-url",
                                       base_url, "--vision"), capsys)
        asked = len(server.chat_requests)
    assert message == (f"the model at {base_url} ('gpt-3.5-turbo') does not take images; drop --vision or use "
                       "a multimodal model (it answered 400: Invalid content type. image_url is only supported by "
                       "certain models.)")
    assert asked == 1  # not retried

    # A model served here by llama.cpp is text-only: refused before it is loaded (this file is no model).
    gguf = tmp_path / "text-only.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    message = one_line_refusal(run(site, tmp_path / "local", "--model", f"gguf:{gguf}", "--vision", "verifier"), capsys)
    assert message == (f"--vision verifier: the model at gguf:{gguf} (llama.cpp on this machine) does not take "
                       "images; drop --vision or use a multimodal model")
    assert "unknown role 'critic'" in one_line_refusal(run(site, tmp_path / "x", "--vision", "policy,critic"), capsys)


def test_eval_stops_at_a_model_that_takes_no_images_and_resumes_once_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "study"
    study = ["eval", "--suite", "miniwob", "--tasks", "click-test,click-button", "--strategy", "reactive",
             "--max-steps", "1", "--out", str(out), "--model", "openai:gpt-3.5-turbo"]
    with FakeOpenAIServer(answers=answer, reject_images=True) as server:
        capsys.readouterr()
        assert main([*study, "--base-url", server.base_url, "--vision"]) == 2
        err = capsys.readouterr().err  # eval's progress line, then the error
        assert "Traceback" not in err and err.count("forethought: ") == 1, err
        message = err.strip().splitlines()[-1].removeprefix("forethought: ")
        asked = len(server.chat_requests)
        assert message.startswith(f"the model at {server.base_url} ('gpt-3.5-turbo') does not take images")
        assert message.endswith("; the eval stopped there: fix that, then go on with --resume")
        assert asked == 1  # the first task's first call; the second task never started
        assert (out / "results.jsonl").read_text(encoding="utf-8") == ""  # no error rows to clear up

        assert main([*study, "--base-url", server.base_url, "--resume"]) == 0  # without --vision
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted((row["task_id"], row["error"]) for row in rows) == [
        ("miniwob.click-button.seed0", None), ("miniwob.click-test.seed0", None)]
