"""What a call cost, in US dollars, from its token usage and a table of prices.

Prices are list prices per million tokens (standard tier, text, short prompts) as published
by each provider; a configuration overrides any of them per model. A model the table does not
know costs 0 with ``known`` False: a budget sees that it cannot count it, never a guess.

Example::

    table = CostTable()
    cost = table.cost("gpt-4o-mini-2024-07-18", Usage(input_tokens=1_000, output_tokens=200))
    cost.cost_usd, cost.known                      # (0.00027, True)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

from tether.agents.providers.types import Usage

__all__ = ["DEFAULT_PRICES", "Cost", "CostTable", "Price"]


class Price(msgspec.Struct, frozen=True):
    """US dollars per million input and output tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float


class Cost(msgspec.Struct, frozen=True):
    """What one call cost; ``known`` False: the model has no price here (cost 0, not a guess)."""

    cost_usd: float
    known: bool


DEFAULT_PRICES: Final[Mapping[str, Price]] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o1": Price(15.00, 60.00),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "claude-opus-4-5": Price(5.00, 25.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-opus-4": Price(15.00, 75.00),  # claude-opus-4-20250514, alias claude-opus-4-0
    "claude-opus-4-0": Price(15.00, 75.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-sonnet-4-0": Price(3.00, 15.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
}

#: What a provider appends to a model's name for one of its snapshots: a date (2024-07-18,
#: 20250929) or "latest". Anything else (e.g. "-audio-preview") is another model, another price.
_SNAPSHOT: Final = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


class CostTable:
    """Prices by model name: ``prices`` (the defaults), then ``overrides`` on top."""

    def __init__(
        self,
        prices: Mapping[str, Price] = DEFAULT_PRICES,
        overrides: Mapping[str, Price] | None = None,
    ) -> None:
        self._prices = {**prices, **(overrides or {})}

    def price(self, model: str) -> Price | None:
        """The price of ``model``, or of the model it is a dated snapshot of; None: unknown."""
        found = self._prices.get(model)
        if found is None:
            found = self._prices.get(_SNAPSHOT.sub("", model))
        return found

    def cost(self, model: str, usage: Usage) -> Cost:
        """What ``usage`` of ``model`` cost."""
        price = self.price(model)
        if price is None:
            return Cost(0.0, known=False)
        usd = (
            usage.input_tokens * price.input_usd_per_mtok
            + usage.output_tokens * price.output_usd_per_mtok
        ) / 1_000_000
        return Cost(usd, known=True)
