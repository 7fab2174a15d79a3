"""Which provider serves a model name (DESIGN §9): one table, first matching prefix wins.

A provider is one module under ``invoice_pipeline.extraction`` exposing:

- ``NAME``: how the stack, the logs and the README call it;
- ``settings_from(env)``: its own settings, read from the environment by :mod:`invoice_pipeline.settings` once per
  cold start, validated, every error naming the variable (a frozen, hashable value);
- ``create_extractor(llm, consumer_settings)``: the :class:`~invoice_pipeline.extraction.base.Extractor`, which
  prepares the document the way the provider wants it, calls it, translates its errors into the project's error types
  and prices the call.

Adding a provider is that module plus one line in :data:`PROVIDERS`. Modules are imported on first use (the
OCR stack and the SDKs are heavy), and one extractor per model is kept for the container.
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from invoice_pipeline.extraction.base import Extractor


@dataclass(frozen=True)
class ProviderEntry:
    prefix: str  # llm names starting with this ("" matches anything)
    name: str
    module: str


PROVIDERS: tuple[ProviderEntry, ...] = (
    ProviderEntry("bedrock/", "bedrock", "invoice_pipeline.extraction.bedrock"),
    ProviderEntry("textract/", "textract", "invoice_pipeline.extraction.textract"),
    ProviderEntry("ocr-", "ocr", "invoice_pipeline.extraction.ocr"),
    ProviderEntry("", "openai", "invoice_pipeline.extraction.openai_extractor"),  # openai/<model> and any other name
)


class Provider(Protocol):
    NAME: str

    def settings_from(self, env: Mapping[str, str]) -> Hashable: ...

    def create_extractor(self, llm: str, settings: Any) -> Extractor:
        """``settings`` is the whole ``ConsumerSettings``: the provider takes its own part and the time limits."""


def entry_for(llm: str) -> ProviderEntry:
    return next(entry for entry in PROVIDERS if llm.startswith(entry.prefix))


def provider_name(llm: str) -> str:
    """The provider of ``llm`` without importing it (the stack uses this to grant what each model needs)."""
    return entry_for(llm).name


def provider_for(llm: str) -> Provider:
    return _load(entry_for(llm))


def _load(entry: ProviderEntry) -> Provider:
    return cast(Provider, importlib.import_module(entry.module))


def provider_settings(env: Mapping[str, str], llms: tuple[str, ...]) -> tuple[tuple[str, Hashable], ...]:
    """The settings of every provider that serves one of ``llms``, in table order."""
    wanted = {provider_name(llm) for llm in llms}
    return tuple((entry.name, _load(entry).settings_from(env)) for entry in PROVIDERS if entry.name in wanted)


_extractors: dict[tuple[str, Hashable], Extractor] = {}


def extractor_for(llm: str, settings: Any) -> Extractor:
    """The extractor for ``llm`` under ``settings`` (``ConsumerSettings``: frozen, hence hashable)."""
    key = (llm, settings)
    extractor = _extractors.get(key)
    if extractor is None:
        provider = provider_for(llm)
        extractor = provider.create_extractor(llm, settings)
        _extractors[key] = extractor
    return extractor


def reset() -> None:
    """Forget the extractors (their clients hold endpoints and keys); the local stack changes both."""
    _extractors.clear()
