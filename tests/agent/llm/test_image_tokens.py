"""What a picture costs: OpenAI's tile formula for detail high/auto, counted into a prompt's input tokens
where the endpoint does not count them, and a picture survives the plain-text fallback in its place."""
from __future__ import annotations

import io

import openai
import pytest
from PIL import Image

from agent.llm.fake_server import FakeOpenAIServer
from agent.llm.openai_client import OpenAIChatLLM
from agent.llm.pricing import image_tokens, prompt_tokens
from envs.tokens import count_tokens
from world_model.messages import image_part, png_data_url, text_part


@pytest.mark.parametrize(("size", "tokens"), [
    ((1024, 1024), 765),  # OpenAI's examples: scaled to 768 x 768, 4 tiles
    ((2048, 4096), 1105),  # to 1024 x 2048 to fit, then 768 x 1536: 6 tiles
    ((1280, 720), 1105),  # the browser's viewport: already fits, short side under 768 (never scaled up): 6 tiles
    ((1920, 1080), 1105),  # to 1365 x 768: 6 tiles
    ((800, 600), 765),
    ((512, 512), 255),
    ((100, 30), 255),  # one tile at least
    ((4096, 8192), 1105),
])
def test_image_tokens_follow_openais_tile_formula(size: tuple[int, int], tokens: int) -> None:
    assert image_tokens(*size) == tokens


def picture(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, format="PNG")
    return png_data_url(out.getvalue())


def test_a_prompt_counts_its_text_and_each_picture() -> None:
    text = "Task: buy milk\n<page>\n[e1] button 'Buy'\n</page>"
    messages = [{"role": "system", "content": "You act."},
                {"role": "user", "content": [text_part(text), image_part(picture(1280, 720)), text_part("Act.")]}]
    assert prompt_tokens(messages) == count_tokens("You act.") + count_tokens(text + "Act.") + 1105


async def test_the_plain_text_fallback_puts_the_instruction_after_the_picture() -> None:
    url = picture(16, 16)
    content = [text_part("Task: t\n<page>\np\n</page>"), image_part(url), text_part("Answer.")]
    with FakeOpenAIServer(answers=['{"ok": true}'], reject_response_format=True) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        llm = OpenAIChatLLM("gpt-4o", client)
        [answer] = await llm.complete("policy", [{"role": "user", "content": content}], json_schema={
            "title": "ok", "type": "object", "properties": {"ok": {"type": "boolean"}}})
        await llm.aclose()
        sent = server.chat_requests[-1]["messages"][0]["content"]
    assert answer.data == {"ok": True}
    assert sent[:3] == content and sent[3]["type"] == "text" and "JSON schema" in sent[3]["text"]
    assert answer.usage.prompt_tokens == count_tokens("".join(p["text"] for p in sent if p["type"] == "text")) + 255
