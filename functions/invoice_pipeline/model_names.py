"""The model names of ``LLM_MODELS`` (and the stack's ``llmModels``): what an entry is and which provider serves it.

An entry is one model name, or a cascade of 2 or 3 of them written ``FIRST>SECOND[>THIRD]``: each invoice is read by
the first stage, and by the next one only when the answer's evidence does not hold (docs/architecture.md). One entry is
one row of the benchmark, stored in the ledger's ``llm`` column as written without the spaces around ``>``.

This module is the one parser of that list, used by the stack's configuration, the functions' settings and ``local/``.
It imports nothing of the project (nor pydantic), so the CDK app and the settings both load it for free; a malformed
entry raises :class:`ModelNameError` naming the variable and the value, and each caller turns that into its own error.

It also holds the table of providers (which one serves a name, first matching prefix wins): the stack reads it to grant
what each model needs, the settings to read the providers' own variables. Providers are modules named here by string
and imported on first use, never by this module's import (the SDKs and the OCR stack are heavy).
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

CASCADE_SEPARATOR = ">"
MAX_CASCADE_STAGES = 3
# The offline reader's names: it runs on this machine (the local stack); in a cascade it can only be the first stage.
OFFLINE_READER_PREFIX = "ocr-"
OFFLINE_READER_MODELS = frozenset({"ocr-table-v1"})  # the offline reader's model names (it reads with each)


class ModelNameError(ValueError):
    """An entry of the model list is malformed; the message names the variable and the value."""


@dataclass(frozen=True)
class ModelEntry:
    """One entry of the model list: a single model (one stage) or a cascade (2 or 3 stages, read in order)."""

    stages: tuple[str, ...]

    @property
    def name(self) -> str:
        """The entry as the ledger stores it (``llm``): the stages joined by ``>``, without spaces."""
        return CASCADE_SEPARATOR.join(self.stages)

    @property
    def is_cascade(self) -> bool:
        return len(self.stages) > 1

    def __str__(self) -> str:
        return self.name


def parse_model_entry(text: str, variable: str = "LLM_MODELS") -> ModelEntry:
    """``"ocr-table-v1 > gpt-4o"`` -> the cascade of those two stages; ``"gpt-4o"`` -> an entry of one stage."""
    stages = tuple(stage.strip() for stage in text.strip().split(CASCADE_SEPARATOR))
    named = [stage for stage in stages if stage]
    if len(stages) > 1 and len(named) < 2:
        raise ModelNameError(
            f"{variable}: {text.strip()!r} is a cascade of {len(named)} stage{'' if len(named) == 1 else 's'}: a"
            f" cascade names 2 or 3 models, as FIRST{CASCADE_SEPARATOR}SECOND[{CASCADE_SEPARATOR}THIRD]"
        )
    if len(named) < len(stages):
        raise ModelNameError(f"{variable}: {text.strip()!r} has an empty stage")
    if len(stages) > MAX_CASCADE_STAGES:
        raise ModelNameError(
            f"{variable}: {text.strip()!r} has {len(stages)} stages: a cascade has at most {MAX_CASCADE_STAGES}"
        )
    for index, stage in enumerate(stages):
        if stage in stages[:index]:
            raise ModelNameError(f"{variable}: {text.strip()!r} names {stage!r} twice")
        if index > 0 and stage.startswith(OFFLINE_READER_PREFIX):
            raise ModelNameError(
                f"{variable}: {text.strip()!r} has the offline reader {stage!r} after the first stage: it can only"
                " read first (it is the free stage a cascade starts with)"
            )
    return ModelEntry(stages)


def parse_model_list(raw: str | Iterable[str], variable: str = "LLM_MODELS") -> tuple[ModelEntry, ...]:
    """A comma list (or the entries of a JSON list) -> its entries, in order, each once; blank entries are dropped.

    An empty list is returned as such: whether that is an error, or means a default, is the caller's rule.
    """
    parts = raw.split(",") if isinstance(raw, str) else raw
    entries = (parse_model_entry(part, variable) for part in parts if part.strip())
    return tuple(dict.fromkeys(entries))


def model_names(entries: Iterable[ModelEntry]) -> tuple[str, ...]:
    return tuple(entry.name for entry in entries)


def stage_names(entries: Iterable[ModelEntry]) -> tuple[str, ...]:
    """Every model the entries call, each once, in order: what needs a provider (its settings, its grants)."""
    return tuple(dict.fromkeys(stage for entry in entries for stage in entry.stages))


@dataclass(frozen=True)
class ProviderEntry:
    prefix: str  # model names starting with this ("" matches anything)
    name: str
    module: str


PROVIDERS: tuple[ProviderEntry, ...] = (
    ProviderEntry("bedrock/", "bedrock", "invoice_pipeline.providers.bedrock"),
    ProviderEntry("textract/", "textract", "invoice_pipeline.providers.textract"),
    ProviderEntry(OFFLINE_READER_PREFIX, "ocr", "invoice_pipeline.providers.ocr"),
    ProviderEntry("", "openai", "invoice_pipeline.providers.openai_extractor"),  # openai/<model> and any other name
)


def entry_for(llm: str) -> ProviderEntry:
    """The provider of one model name (a stage; a cascade has a provider per stage: see :func:`stage_names`)."""
    return next(entry for entry in PROVIDERS if llm.startswith(entry.prefix))


def provider_name(llm: str) -> str:
    """The provider of ``llm`` without importing it (the stack uses this to grant what each model needs)."""
    return entry_for(llm).name


def provider_settings(env: Mapping[str, str], llms: Iterable[str]) -> tuple[tuple[str, Hashable], ...]:
    """The settings of every provider that serves one of ``llms`` (model names, not cascades), in table order."""
    wanted = {provider_name(llm) for llm in llms}
    return tuple(
        (entry.name, importlib.import_module(entry.module).settings_from(env))
        for entry in PROVIDERS
        if entry.name in wanted
    )
