"""The offline reader in AWS (docs/cascade.md): ``ocr-*`` models and cascades starting with one synthesize cleanly
(cdk-nag included), the consumer gets them in LLM_MODELS, and the synth says what of the reader deploys and why."""

from __future__ import annotations

import pytest

from stacks.layer import LAMBDA_UNZIPPED_LIMIT_MB, OCR_RUNTIME_MB
from tests.infrastructure.conftest import cfn_lint, synthesize
from tests.infrastructure.test_stack import environment

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_an_offline_reader_cascade_synthesizes_cleanly_and_says_the_ocr_runtime_does_not_fit(tmp_path, capsys):
    synth = synthesize(tmp_path, llmModels="ocr-table-v1>gpt-4o-2024-11-20, ocr-table-v1")

    consumer = environment(synth, "consumer.handler")
    assert consumer["LLM_MODELS"] == "ocr-table-v1>gpt-4o-2024-11-20,ocr-table-v1"
    printed = capsys.readouterr().out
    assert "offline reader: its PDF text-layer path deploys in the dependency layer" in printed
    assert f"{OCR_RUNTIME_MB:.1f} MB" in printed and "cannot read here" in printed
    assert OCR_RUNTIME_MB > LAMBDA_UNZIPPED_LIMIT_MB  # why it is not deployed (bench/layer_sizes.py measures it)
    assert cfn_lint(synth.template_path).returncode == 0


def test_without_an_offline_model_the_synth_says_nothing_of_it(tmp_path, capsys):
    synthesize(tmp_path, llmModels="gpt-4o-2024-11-20")
    assert "offline reader" not in capsys.readouterr().out
