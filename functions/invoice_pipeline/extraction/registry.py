"""Which extractor serves a model name: ``ocr-*`` the offline OCR extractor, anything else OpenAI.

Both are imported on first use (the OCR stack is an optional, heavy dependency; the SDK is heavy too), and
one extractor per model is kept for the container.
"""

from __future__ import annotations

from invoice_pipeline.extraction.base import Extractor
from invoice_pipeline.settings import ConsumerSettings

_extractors: dict[tuple[str, ConsumerSettings], Extractor] = {}


def extractor_for(model: str, settings: ConsumerSettings) -> Extractor:
    key = (model, settings)  # settings are frozen, hence hashable
    extractor = _extractors.get(key)
    if extractor is None:
        if model.startswith("ocr-"):
            from invoice_pipeline.extraction import ocr

            extractor = ocr.OcrExtractor(model)
        else:
            from invoice_pipeline.extraction.openai_extractor import OpenAIExtractor

            extractor = OpenAIExtractor(model, settings)
        _extractors[key] = extractor
    return extractor


def reset() -> None:
    """Forget the extractors (their clients hold endpoints and keys); the local stack changes both."""
    _extractors.clear()
