"""Each model family's image-token rule against the worked examples its provider publishes.

The expected numbers are the providers' own (OpenAI "Images and vision: calculating costs", Anthropic "Vision:
evaluate image size", Amazon Nova "Image understanding: image to tokens conversion", all read 2026-12-07), or
their published base and per-tile figures applied to a published tile count, written out here.
"""

from __future__ import annotations

import pytest

from invoice_pipeline.pacing.image_tokens import (
    DEFAULT_RULE,
    AreaRule,
    BucketRule,
    PatchRule,
    TileRule,
    image_tokens,
    rule_for,
)


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [(1024, 1024, 765), (2048, 4096, 1105)],  # OpenAI's gpt-4o examples: 4 tiles, 6 tiles
)
def test_gpt_4o_counts_85_plus_170_per_tile(width: int, height: int, tokens: int) -> None:
    assert image_tokens("gpt-4o-2024-11-20", width, height) == tokens
    assert image_tokens("openai/gpt-4.1", width, height) == tokens


def test_gpt_4o_mini_counts_2833_plus_5667_per_tile() -> None:
    assert image_tokens("gpt-4o-mini", 1024, 1024) == 25_501  # 2,833 + 4 x 5,667
    assert image_tokens("gpt-4o-mini-2024-07-18", 2048, 4096) == 36_835  # 2,833 + 6 x 5,667: an A4 page


def test_gpt_5_counts_70_plus_140_per_tile() -> None:
    assert image_tokens("gpt-5", 1024, 1024) == 630  # 70 + 4 x 140
    assert image_tokens("gpt-5-2025-08-07", 2048, 4096) == 910  # 70 + 6 x 140


def test_patch_models_count_32_px_patches_capped_at_1536_times_their_multiplier_rounded_up() -> None:
    rule = PatchRule(1.62)
    assert rule.patches(1024, 1024) == 1024  # OpenAI's example: 32 x 32 patches
    assert rule.patches(1800, 2400) == 1452  # OpenAI's example: shrunk to 1056 x 1408, 33 x 44 patches
    assert image_tokens("gpt-4.1-mini", 1024, 1024) == 1659  # 1,024 x 1.62 = 1,658.88
    assert image_tokens("gpt-5-mini", 1800, 2400) == 2353  # 1,452 x 1.62 = 2,352.24
    assert image_tokens("gpt-4.1-nano-2025-04-14", 1024, 1024) == 2520  # 1,024 x 2.46 = 2,519.04, rounded up


@pytest.mark.parametrize(("width", "height", "tokens"), [(200, 200, 54), (1000, 1000, 1334), (1092, 1092, 1590)])
def test_claude_counts_width_times_height_over_750(width: int, height: int, tokens: int) -> None:
    assert image_tokens("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", width, height) == tokens


def test_claude_scales_a_large_image_down_first() -> None:
    # The long edge fits 1,568 px: 1,568 x 784 = 1,229,312 px, above the ~1,600-token area, is shrunk to it.
    assert image_tokens("bedrock/anthropic.claude-haiku-4-5-20251001-v1:0", 3000, 1500) == 1600


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    # Amazon's table, and its own example: 800 x 400 snaps to the 1:2 bucket of 900 x 450, about 800 tokens.
    [(900, 450, 800), (800, 400, 800), (900, 900, 1300), (1400, 900, 1800), (1800, 900, 2400), (1300, 1300, 2600)],
)
def test_nova_snaps_to_an_aspect_ratio_bucket(width: int, height: int, tokens: int) -> None:
    assert image_tokens("bedrock/eu.amazon.nova-lite-v1:0", width, height) == tokens
    assert image_tokens("bedrock/amazon.nova-pro-v1:0", height, width) == tokens  # HxW or WxH


def test_each_name_takes_its_own_familys_rule() -> None:
    assert rule_for("openai/gpt-4o-mini") == TileRule(2833, 5667)
    assert rule_for("gpt-5-pro") == TileRule(70, 140)
    assert isinstance(rule_for("bedrock/apac.anthropic.claude-3-5-sonnet-20241022-v2:0"), AreaRule)
    assert isinstance(
        rule_for("bedrock/arn:aws:bedrock:eu-west-1:1:inference-profile/eu.amazon.nova-lite-v1:0"), BucketRule
    )
    assert rule_for("some-new-model") == DEFAULT_RULE == TileRule(85, 170)
