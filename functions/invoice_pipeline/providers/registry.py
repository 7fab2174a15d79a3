"""Which provider serves a model name (docs/architecture.md §10): one table, first matching prefix wins.

A provider is one module under ``invoice_pipeline.providers`` exposing:

- ``NAME``: how the stack, the logs and the docs call it;
- ``settings_from(env)``: its own settings, read from the environment by :mod:`invoice_pipeline.settings` once per
  cold start, validated, every error naming the variable (a frozen, hashable value);
- ``create_extractor(llm, consumer_settings, clients)``: the :class:`~invoice_pipeline.extractor.Extractor`, which
  prepares the document the way the provider wants it, calls it, translates its errors into the project's error types
  and prices the call.

Adding a provider is that module plus one line in :data:`invoice_pipeline.model_names.PROVIDERS` (the table lives
with the model names: the stack and the settings read it without loading this module). Modules are imported on first
use (the OCR stack and the SDKs are heavy), and the runtime's :class:`Extractors` keeps one extractor per model.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Hashable, Mapping
from typing import Any, Protocol, cast

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.errors import ConfigurationError
from invoice_pipeline.extractor import Extractor
from invoice_pipeline.model_names import CASCADE_SEPARATOR, ProviderEntry, entry_for


class Provider(Protocol):
    NAME: str

    def settings_from(self, env: Mapping[str, str]) -> Hashable: ...

    def create_extractor(self, llm: str, settings: Any, clients: AwsClients) -> Extractor:
        """``settings`` is the whole ``ConsumerSettings``: the provider takes its own part and the time limits;
        ``clients`` are the runtime's AWS clients."""


def provider_for(llm: str) -> Provider:
    if CASCADE_SEPARATOR in llm:
        # A cascade has a provider per stage: the consumer calls each stage's extractor
        # (invoice_pipeline.flows.cascade).
        raise ConfigurationError(f"{llm!r} is a cascade: it has no single extractor, each stage has its own")
    return _load(entry_for(llm))


def _load(entry: ProviderEntry) -> Provider:
    return cast(Provider, importlib.import_module(entry.module))


class Extractors:
    """The extractors of one runtime: one per model, made on first use and kept while the container is warm (their SDK
    clients keep connections open between invocations)."""

    def __init__(self, settings: Any, clients: AwsClients) -> None:
        self._settings = settings  # the whole ConsumerSettings
        self._clients = clients
        self._extractors: dict[str, Extractor] = {}
        self._lock = threading.Lock()

    def get(self, llm: str) -> Extractor:
        with self._lock:
            extractor = self._extractors.get(llm)
            if extractor is None:
                extractor = provider_for(llm).create_extractor(llm, self._settings, self._clients)
                self._extractors[llm] = extractor
            return extractor
