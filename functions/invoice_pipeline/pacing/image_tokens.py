"""How many input tokens an image costs, per model family, as each provider publishes it: one table.

The budget (:mod:`invoice_pipeline.pacing.budget`) reserves a call's tokens before it is made, so it must count an image
the way the model's provider does; the emulators in ``local/`` count with the same table. The sizes given are the
image as sent (:func:`invoice_pipeline.documents.images.scaled_size` already fits 2048 px and 768 px on the short side).

Four kinds of rule (sources and the dates they were read next to each entry of :data:`RULES`):

- :class:`TileRule`: fit 2048 x 2048, shortest side 768, then ``base + per_tile x`` 512-px tiles (OpenAI's
  gpt-4o family; gpt-4o-mini counts the same tiles at 2,833 + 5,667, gpt-5 at 70 + 140);
- :class:`PatchRule`: 32-px patches, at most 1,536 (the image is shrunk to fit), times a multiplier (OpenAI's
  gpt-4.1-mini, gpt-4.1-nano, gpt-5-mini, gpt-5-nano, o4-mini);
- :class:`AreaRule`: ``width x height / 750`` after fitting the long edge to 1,568 px and the area to about
  1,600 tokens (Anthropic's Claude on Bedrock);
- :class:`BucketRule`: the image is snapped to an aspect-ratio bucket and costs that bucket's tokens (Amazon Nova).

A model outside the table is counted with :data:`DEFAULT_RULE` (gpt-4o's); the budget corrects each model's
estimates from the tokens its answers report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from invoice_pipeline.model_ids import api_model_id, family_entry, profile_and_model, table_entry


class ImageTokenRule(Protocol):
    def tokens(self, width: int, height: int) -> int: ...


@dataclass(frozen=True)
class TileRule:
    base: int
    per_tile: int
    fit: int = 2048
    short_side: int = 768
    tile: int = 512

    def tokens(self, width: int, height: int) -> int:
        factor = min(1.0, self.fit / max(width, height))
        factor *= min(1.0, self.short_side / (min(width, height) * factor))
        tiles = math.ceil(width * factor / self.tile) * math.ceil(height * factor / self.tile)
        return self.base + self.per_tile * tiles


@dataclass(frozen=True)
class PatchRule:
    multiplier: float
    patch: int = 32
    max_patches: int = 1536

    def patches(self, width: int, height: int) -> int:
        """Patches covering the image, shrunk (aspect kept) until whole patches cover it within the cap."""
        if math.ceil(width / self.patch) * math.ceil(height / self.patch) <= self.max_patches:
            return math.ceil(width / self.patch) * math.ceil(height / self.patch)
        shrink = math.sqrt(self.max_patches * self.patch**2 / (width * height))
        # Then shrunk further so that a whole number of patches spans the width (the published procedure).
        patches_wide = width * shrink / self.patch
        shrink *= math.floor(patches_wide) / patches_wide
        return min(self.max_patches, _whole(width * shrink / self.patch) * _whole(height * shrink / self.patch))

    def tokens(self, width: int, height: int) -> int:
        return math.ceil(self.patches(width, height) * self.multiplier)


def _whole(patches: float) -> int:
    """Whole patches covering ``patches`` (a float that should be whole is not rounded up past it)."""
    return math.ceil(round(patches, 6))


@dataclass(frozen=True)
class AreaRule:
    divisor: int = 750
    long_edge: int = 1568
    max_pixels: int = 1_200_000  # about 1,600 tokens: 1,092 x 1,092 (1.19 MP) is published as not resized

    def tokens(self, width: int, height: int) -> int:
        factor = min(1.0, self.long_edge / max(width, height), math.sqrt(self.max_pixels / (width * height)))
        return math.ceil(width * factor * height * factor / self.divisor)


@dataclass(frozen=True)
class BucketRule:
    """(long side, short side, tokens) of each published bucket; an image takes the bucket nearest its aspect ratio
    (and, among buckets of that ratio, nearest its long side). Beyond the widest published ratio the tokens grow
    with the long side, at that bucket's tokens per pixel of length."""

    buckets: tuple[tuple[int, int, int], ...]

    def tokens(self, width: int, height: int) -> int:
        long, short = max(width, height), max(1, min(width, height))
        ratio = long / short

        def distance(bucket: tuple[int, int, int]) -> tuple[float, int]:
            return abs(math.log(ratio * bucket[1] / bucket[0])), abs(long - bucket[0])

        nearest = min(self.buckets, key=distance)
        widest = max(self.buckets, key=lambda bucket: bucket[0] / bucket[1])
        if nearest == widest and ratio > widest[0] / widest[1]:
            return math.ceil(widest[2] * ratio / (widest[0] / widest[1]))
        return nearest[2]


# ------------------------------------------------------------------------------------------------- the table

# OpenAI, "Images and vision: calculating costs", https://platform.openai.com/docs/guides/images-vision (read
# 2026-12-07). Tiles: gpt-4o, gpt-4.1, gpt-4.5 85 + 170; gpt-4o-mini 2,833 + 5,667; gpt-5 70 + 140; o1, o3 75 + 150.
# Patches: gpt-4.1-mini and gpt-5-mini x 1.62, gpt-4.1-nano and gpt-5-nano x 2.46, o4-mini x 1.72. gpt-5-pro is not
# listed: counted as gpt-5, its family.
OPENAI_TILES_GPT_4O = TileRule(85, 170)
OPENAI_RULES: dict[str, ImageTokenRule] = {
    "gpt-4o": OPENAI_TILES_GPT_4O,
    "chatgpt-4o-latest": OPENAI_TILES_GPT_4O,
    "gpt-4o-mini": TileRule(2833, 5667),
    "gpt-4.1": OPENAI_TILES_GPT_4O,
    "gpt-4.5-preview": OPENAI_TILES_GPT_4O,
    "gpt-4.1-mini": PatchRule(1.62),
    "gpt-4.1-nano": PatchRule(2.46),
    "gpt-5": TileRule(70, 140),
    "gpt-5-pro": TileRule(70, 140),
    "gpt-5-chat-latest": TileRule(70, 140),
    "gpt-5-mini": PatchRule(1.62),
    "gpt-5-nano": PatchRule(2.46),
    "o1": TileRule(75, 150),
    "o3": TileRule(75, 150),
    "o4-mini": PatchRule(1.72),
}
# Bedrock model ids (after the inference-profile prefix), by family.
BEDROCK_RULES: dict[str, ImageTokenRule] = {
    # Anthropic, "Vision: evaluate image size", https://docs.claude.com/en/docs/build-with-claude/vision (read
    # 2026-12-07): tokens = width x height / 750; a long edge above 1,568 px or more than about 1,600 tokens is
    # scaled down first (1,092 x 1,092 is the largest square kept). The page recommends at most 1.15 MP for speed;
    # the count follows what is kept, not the recommendation.
    "anthropic.claude": AreaRule(),
    # Amazon Nova User Guide, "Image understanding: image to tokens conversion",
    # https://docs.aws.amazon.com/nova/latest/userguide/modalities-image.html (read 2026-12-07): 900 x 450 ~800,
    # 900 x 900 ~1,300, 1,400 x 900 ~1,800, 1,800 x 900 ~2,400, 1,300 x 1,300 ~2,600 tokens.
    "amazon.nova": BucketRule(
        ((900, 450, 800), (900, 900, 1300), (1400, 900, 1800), (1800, 900, 2400), (1300, 1300, 2600))
    ),
}
DEFAULT_RULE: ImageTokenRule = OPENAI_TILES_GPT_4O


def rule_for(llm: str) -> ImageTokenRule:
    """The image-token rule of a configured model name (:data:`DEFAULT_RULE` for a model outside the table)."""
    model_id = api_model_id(llm)
    if llm.startswith("bedrock/"):
        _, base = profile_and_model(model_id)
        return family_entry(BEDROCK_RULES, base) or DEFAULT_RULE
    return table_entry(OPENAI_RULES, model_id) or DEFAULT_RULE


def image_tokens(llm: str, width: int, height: int) -> int:
    """Input tokens ``llm`` counts for one image of ``width`` x ``height`` pixels as sent."""
    return rule_for(llm).tokens(width, height)
