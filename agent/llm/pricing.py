"""What LLM calls cost: USD per 1M tokens, per model. Extend with a JSON file or in code. And how many
input tokens a prompt is, pictures included, where the endpoint does not say (`prompt_tokens`).

A JSON file (FORETHOUGHT_PRICES=path) maps model names to prices, e.g.
    {"my-model": {"input": 0.5, "cached_input": 0.25, "output": 1.5}}
(`cached_input` defaults to `input`). Models missing from the table cost 0 and are counted as unpriced.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.llm.protocol import ConfigError
from envs.tokens import count_tokens
from world_model.messages import Message, content_text, image_urls, png_size


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    input: float
    output: float
    cached_input: float | None = None  # None: cached input costs as much as input


# OpenAI's published list prices (standard tier, USD per 1M tokens) as of 2025-08; check
# https://openai.com/api/pricing and override in FORETHOUGHT_PRICES when they change.
PRICES_AS_OF = "2025-08"
BUILTIN_PRICES: dict[str, Price] = {
    "gpt-5": Price(input=1.25, cached_input=0.125, output=10.00),
    "gpt-5-mini": Price(input=0.25, cached_input=0.025, output=2.00),
    "gpt-5-nano": Price(input=0.05, cached_input=0.005, output=0.40),
    "gpt-4.1": Price(input=2.00, cached_input=0.50, output=8.00),
    "gpt-4.1-mini": Price(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, cached_input=0.025, output=0.40),
    "gpt-4o": Price(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4o-mini": Price(input=0.15, cached_input=0.075, output=0.60),
    "o1": Price(input=15.00, cached_input=7.50, output=60.00),
    "o3": Price(input=2.00, cached_input=0.50, output=8.00),
    "o3-mini": Price(input=1.10, cached_input=0.55, output=4.40),
    "o4-mini": Price(input=1.10, cached_input=0.275, output=4.40),
    "gpt-4-turbo": Price(input=10.00, output=30.00),
    "gpt-3.5-turbo": Price(input=0.50, output=1.50),
}

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class PriceTable:
    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices: dict[str, Price] = dict(BUILTIN_PRICES if prices is None else prices)

    def add(self, model: str, *, input: float, output: float, cached_input: float | None = None) -> None:
        self.prices[model] = Price(input=input, output=output, cached_input=cached_input)

    def load_file(self, path: str | Path) -> None:
        """Add (or replace) the prices in a JSON file of {model: {input, output, cached_input?}}."""
        path = Path(path)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
            for model, price in entries.items():
                self.add(model, input=float(price["input"]), output=float(price["output"]),
                         cached_input=None if price.get("cached_input") is None else float(price["cached_input"]))
        except FileNotFoundError:
            raise ConfigError(f"price file not found: {path} (FORETHOUGHT_PRICES)") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f'price file {path} is malformed ({exc!r}); expected {{"model": {{"input": 2.5, "output": 10}}}}'
            ) from None

    def lookup(self, model: str) -> Price | None:
        """The price of `model`, also for dated snapshots ("gpt-4o-2024-08-06") and "provider/model" names."""
        for name in (model, model.rsplit("/", 1)[-1]):
            for candidate in (name, _DATE_SUFFIX.sub("", name)):
                if candidate in self.prices:
                    return self.prices[candidate]
        return None

    def cost_usd(self, model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float | None:
        """USD for one call, or None when the model is not in the table."""
        price = self.lookup(model)
        if price is None:
            return None
        cached_rate = price.input if price.cached_input is None else price.cached_input
        uncached = max(prompt_tokens - cached_tokens, 0)
        return (uncached * price.input + cached_tokens * cached_rate + completion_tokens * price.output) / 1_000_000


def default_price_table(prices_file: str | Path | None = None) -> PriceTable:
    """Built-in prices, extended by `prices_file` or else $FORETHOUGHT_PRICES when set."""
    table = PriceTable()
    path = prices_file or os.environ.get("FORETHOUGHT_PRICES")
    if path:
        table.load_file(path)
    return table


# OpenAI's count for an image sent with detail "high" or "auto" (GPT-4o, GPT-4.1, o-series): the image is
# scaled down to fit in 2048 x 2048, then down so its short side is at most 768 px; each 512 px tile
# of the result costs 170 tokens, plus 85 per image (https://platform.openai.com/docs/guides/images-vision).
IMAGE_FIT_PX, IMAGE_SHORT_SIDE_PX, IMAGE_TILE_PX = 2048, 768, 512
IMAGE_BASE_TOKENS, IMAGE_TILE_TOKENS = 85, 170


def image_tokens(width: int, height: int) -> int:
    """Input tokens of a `width` x `height` image at detail high/auto (OpenAI's tile formula)."""
    scale = min(1.0, IMAGE_FIT_PX / max(width, height))
    scale *= min(1.0, IMAGE_SHORT_SIDE_PX / (min(width, height) * scale))
    scaled_width, scaled_height = round(width * scale), round(height * scale)
    tiles = math.ceil(scaled_width / IMAGE_TILE_PX) * math.ceil(scaled_height / IMAGE_TILE_PX)
    return IMAGE_BASE_TOKENS + IMAGE_TILE_TOKENS * tiles


def prompt_tokens(messages: Iterable[Message]) -> int:
    """A prompt's input tokens counted here: its text (envs/tokens.py) and each PNG picture by `image_tokens`."""
    messages = list(messages)
    text = sum(count_tokens(content_text(m.get("content"))) for m in messages)
    return text + sum(image_tokens(*png_size(url)) for url in image_urls(messages))
