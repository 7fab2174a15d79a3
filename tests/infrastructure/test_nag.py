"""cdk-nag is wired so that an unacknowledged AwsSolutions finding makes synth fail."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_queue_without_ssl_enforcement_fails_synth(tmp_path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    sqs.Queue(stack, "PlainQueue", encryption=sqs.QueueEncryption.SQS_MANAGED)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS4"):
        app.synth()
