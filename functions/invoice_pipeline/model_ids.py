"""Which entry of a per-model table (prices, image-token rules) a configured model name takes.

Names come as configured in ``LLM_MODELS`` (``gpt-4o-2024-11-20``, ``openai/gpt-5-pro``,
``bedrock/eu.amazon.nova-lite-v1:0``, an inference-profile ARN). :func:`api_model_id` gives the id the provider is
called with; :func:`table_entry` finds its entry: the exact id, else a key the id extends only by a dated snapshot
suffix (``gpt-4o-2024-11-20`` -> ``gpt-4o``). A longer id never takes a shorter one's entry: ``gpt-5-pro`` is not
``gpt-5``, ``gpt-4o-mini`` is not ``gpt-4o``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

PROVIDER_PREFIXES = ("openai/", "bedrock/")
# Bedrock cross-region inference profiles: ``us.`` is served at the US price of its model; the others may differ.
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
# OpenAI's snapshots: ``gpt-4o-2024-11-20``, ``gpt-4-0613``.
_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})")

Entry = TypeVar("Entry")


def api_model_id(llm: str) -> str:
    """The id the provider is called with: the configured name without ``openai/`` or ``bedrock/``, and an
    inference-profile ARN reduced to its profile id."""
    for prefix in PROVIDER_PREFIXES:
        if llm.startswith(prefix):
            llm = llm[len(prefix) :]
            break
    return llm.rsplit("/", 1)[-1] if llm.startswith("arn:") else llm


def profile_and_model(model_id: str) -> tuple[str | None, str]:
    """``eu.amazon.nova-lite-v1:0`` -> (``eu.``, ``amazon.nova-lite-v1:0``); (None, the id) without a profile."""
    for prefix in PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return prefix, model_id[len(prefix) :]
    return None, model_id


def table_entry(table: Mapping[str, Entry], model_id: str) -> Entry | None:
    """``table[model_id]``, else the entry of the key ``model_id`` extends by a snapshot date only, else None."""
    if model_id in table:
        return table[model_id]
    for key, entry in table.items():
        rest = model_id[len(key) :] if model_id.startswith(key) else None
        if rest and _SNAPSHOT_SUFFIX.fullmatch(rest):
            return entry
    return None


def family_entry(families: Mapping[str, Entry], model_id: str) -> Entry | None:
    """For tables keyed by family (``anthropic.claude``, ``amazon.nova``): the longest key ``model_id`` starts with
    at a word boundary (``.``, ``-`` or the end)."""
    matches = [key for key in families if model_id == key or (model_id.startswith(key) and model_id[len(key)] in ".-")]
    return families[max(matches, key=len)] if matches else None
