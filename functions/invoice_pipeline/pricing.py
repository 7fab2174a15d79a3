"""What a model call costs: USD per 1M input and output tokens, or per page, in one table (every provider's).

Built-in prices are the providers' published list prices (standard tier, uncached input, on-demand), each block with
its source and the date it was read. ``MODEL_PRICES`` (JSON, also ``modelPrices`` in ``cdk.json`` context) sets or
overrides a price without a release: ``{"gpt-5-pro": {"input": 15, "output": 120}, "textract/analyze-expense":
{"page": 0.01}}``, keyed by the name in ``LLM_MODELS`` (or the id the provider is called with).

A model with no price costs NULL ("unknown"), never 0: the ledger row gets a ``price_unknown`` warning, the report
and the workbench show "unknown", and ``invoices doctor`` names the model. Only the offline ``ocr-*`` extractors are
free. Lookup rules (:mod:`invoice_pipeline.model_ids`): an id takes its own entry, or the entry of the id it extends
by a snapshot date (``gpt-4o-2024-11-20`` -> ``gpt-4o``), never a shorter model's (``gpt-5-pro`` is not ``gpt-5``).
A Bedrock ``us.`` inference profile is priced as its model in US East; other region profiles (``eu.``, ``apac.``,
``global.``) only by their own entries, since their prices differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from invoice_pipeline.model_ids import api_model_id, profile_and_model, table_entry

PER_TOKENS = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """USD per 1M input tokens, per 1M output tokens, and per page (a document service)."""

    input: Decimal = Decimal(0)
    output: Decimal = Decimal(0)
    page: Decimal = Decimal(0)

    def cost(self, input_tokens: int, output_tokens: int, pages: int = 0) -> Decimal:
        return (self.input * input_tokens + self.output * output_tokens) / PER_TOKENS + self.page * pages


def _tokens(input_price: str, output_price: str) -> Price:
    return Price(Decimal(input_price), Decimal(output_price))


FREE = Price()

# OpenAI, https://openai.com/api/pricing/ and https://platform.openai.com/docs/pricing (standard tier), read
# 2026-12-07. gpt-5-pro from the same page, added 2026-12-07.
OPENAI_PRICES: dict[str, Price] = {
    "gpt-4o": _tokens("2.50", "10.00"),
    "gpt-4o-2024-05-13": _tokens("5.00", "15.00"),
    "gpt-4o-mini": _tokens("0.15", "0.60"),
    "gpt-4.1": _tokens("2.00", "8.00"),
    "gpt-4.1-mini": _tokens("0.40", "1.60"),
    "gpt-4.1-nano": _tokens("0.10", "0.40"),
    "gpt-5": _tokens("1.25", "10.00"),
    "gpt-5-mini": _tokens("0.25", "2.00"),
    "gpt-5-nano": _tokens("0.05", "0.40"),
    "gpt-5-pro": _tokens("15.00", "120.00"),
}

# Amazon Bedrock on-demand, https://aws.amazon.com/bedrock/pricing/, US East (N. Virginia), read 2026-12-07; keyed by
# base model id. Claude Sonnet 4.5 and Haiku 4.5 added 2026-12-07 (Anthropic's list prices, the same on Bedrock in
# US East: https://www.anthropic.com/pricing). Cross-region profiles are billed at the source region's rates, so a
# region profile has its own row: Nova Lite through the EU profile at the Europe (Frankfurt) rate of the same page,
# 23% above US East (as measured in 2026-12; this machine cannot reach the page, check it before relying on it).
BEDROCK_PRICES: dict[str, Price] = {
    "anthropic.claude-3-haiku-20240307-v1:0": _tokens("0.25", "1.25"),
    "anthropic.claude-3-5-haiku-20241022-v1:0": _tokens("0.80", "4.00"),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": _tokens("3.00", "15.00"),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": _tokens("3.00", "15.00"),
    "anthropic.claude-sonnet-4-20250514-v1:0": _tokens("3.00", "15.00"),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": _tokens("3.00", "15.00"),
    "anthropic.claude-haiku-4-5-20251001-v1:0": _tokens("1.00", "5.00"),
    "amazon.nova-lite-v1:0": _tokens("0.06", "0.24"),
    "amazon.nova-pro-v1:0": _tokens("0.80", "3.20"),
    "eu.amazon.nova-lite-v1:0": _tokens("0.0738", "0.2952"),
}
# Profiles served at the model's US East price (the request runs in US regions at US rates).
US_PRICED_PROFILES = (None, "us.")

# Amazon Textract AnalyzeExpense, https://aws.amazon.com/textract/pricing/, US East, first million pages a month,
# read 2025 (0.008 beyond a million pages).
PAGE_PRICES: dict[str, Price] = {"textract/analyze-expense": Price(page=Decimal("0.01"))}

ModelPrices = tuple[tuple[str, Price], ...]  # configured prices (MODEL_PRICES), hashable for the frozen settings


def builtin_price(llm: str) -> Price | None:
    """The built-in price of a configured model name, or None."""
    if llm.startswith("ocr-"):
        return FREE
    if llm in PAGE_PRICES:
        return PAGE_PRICES[llm]
    model_id = api_model_id(llm)
    if llm.startswith("bedrock/"):
        profile, base = profile_and_model(model_id)
        if profile in US_PRICED_PROFILES:
            return table_entry(BEDROCK_PRICES, base)
        return table_entry(BEDROCK_PRICES, model_id)
    return table_entry(OPENAI_PRICES, model_id)


def price_for(llm: str, configured: ModelPrices = ()) -> Price | None:
    """A configured price (by the name in LLM_MODELS, else the provider's id), else the built-in one, else None."""
    prices = dict(configured)
    return prices.get(llm) or prices.get(api_model_id(llm)) or builtin_price(llm)


def cost_usd(
    llm: str, input_tokens: int, output_tokens: int, *, pages: int = 0, configured: ModelPrices = ()
) -> Decimal | None:
    """USD for one call of ``llm`` (the name as configured); None when it has no price (the consumer records the
    cost as unknown, with a warning in the ledger row and the log)."""
    price = price_for(llm, configured)
    return None if price is None else price.cost(input_tokens, output_tokens, pages)


def unpriced(llms: Iterable[str], configured: ModelPrices = ()) -> list[str]:
    """The models of ``llms`` that have no price (``invoices doctor`` names them)."""
    return [llm for llm in llms if price_for(llm, configured) is None]


def parse_model_prices(raw: str | Mapping[str, Any]) -> ModelPrices:
    """``MODEL_PRICES`` (a JSON object, or the mapping from ``cdk.json``): model -> ``{"input": USD per 1M tokens,
    "output": USD per 1M tokens}`` or ``{"page": USD per page}``; a ValueError names what is wrong."""
    if isinstance(raw, str):
        if not raw.strip():
            return ()
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise ValueError(f"MODEL_PRICES is not JSON: {error}") from None
    if not isinstance(raw, Mapping):
        raise ValueError("MODEL_PRICES must be a JSON object of model name -> {input, output} or {page}")
    prices = []
    for name, entry in raw.items():
        if not isinstance(entry, Mapping) or not entry:
            raise ValueError(f"MODEL_PRICES[{name!r}] must be an object with input and output, or page")
        unknown = set(entry) - {"input", "output", "page"}
        if unknown:
            raise ValueError(f"MODEL_PRICES[{name!r}] has unknown keys {sorted(unknown)} (input, output, page)")
        if "page" not in entry and not {"input", "output"} <= set(entry):
            raise ValueError(f"MODEL_PRICES[{name!r}] needs both input and output (USD per 1M tokens), or page")
        values = {}
        for key, value in entry.items():
            try:
                amount = Decimal(str(value)) if isinstance(value, int | float | str) and value != "" else None
            except InvalidOperation:
                amount = None
            if amount is None or not amount.is_finite() or amount < 0 or isinstance(value, bool):
                raise ValueError(f"MODEL_PRICES[{name!r}].{key} must be a number >= 0, got {value!r}")
            values[key] = amount
        prices.append((str(name), Price(**values)))
    return tuple(prices)
