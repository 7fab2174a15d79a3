"""What a model call costs: USD per 1M input and output tokens, in one table.

Prices are the providers' published list prices (standard tier, uncached input) when this table was last
edited; update them here only. A model missing from the table costs 0 and logs a warning, so a report never
silently invents a price. Offline ``ocr-*`` extractors cost nothing.
"""

from __future__ import annotations

from decimal import Decimal

from invoice_pipeline.observability import logger

PER_TOKENS = Decimal(1_000_000)

# model name (or the prefix of dated snapshots) -> (USD per 1M input tokens, USD per 1M output tokens)
PRICES: dict[str, tuple[Decimal, Decimal]] = {
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-2024-05-13": (Decimal("5.00"), Decimal("15.00")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
    "gpt-5": (Decimal("1.25"), Decimal("10.00")),
    "gpt-5-mini": (Decimal("0.25"), Decimal("2.00")),
    "gpt-5-nano": (Decimal("0.05"), Decimal("0.40")),
}


def price_for(llm: str) -> tuple[Decimal, Decimal] | None:
    """The exact entry, else the longest name ``llm`` starts with (``gpt-4o-2024-11-20`` -> ``gpt-4o``).

    ``llm`` is the configured name without its ``openai/`` prefix: the name the OpenAI API is called with."""
    if llm in PRICES:
        return PRICES[llm]
    prefixes = [name for name in PRICES if llm.startswith(name + "-")]
    return PRICES[max(prefixes, key=len)] if prefixes else None


def cost_usd(llm: str, input_tokens: int, output_tokens: int) -> Decimal:
    if llm.startswith("ocr-"):
        return Decimal(0)
    price = price_for(llm)
    if price is None:
        logger.warning("no price for model; cost recorded as 0", extra={"model": llm})
        return Decimal(0)
    return token_cost(price, input_tokens, output_tokens)


def token_cost(price: tuple[Decimal, Decimal], input_tokens: int, output_tokens: int) -> Decimal:
    """USD for the tokens at ``price`` (USD per 1M input tokens, USD per 1M output tokens); every provider's."""
    input_price, output_price = price
    return (input_price * input_tokens + output_price * output_tokens) / PER_TOKENS
