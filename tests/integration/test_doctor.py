"""`invoices doctor` on the local stack: embedded Postgres, moto (S3, SQS, Scheduler) and the model emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pg8000.native
import pytest

from invoices_cli.main import main
from local.aws import reset_client_caches
from local.model_emulator import ModelEmulator
from local.stack import create_local_stack
from local.stack_config import load_queue_settings

KEY = "sk-the-right-key"
MODEL = "gpt-4o-2024-11-20"


@pytest.fixture
def deployment(database: str, aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelEmulator]:
    stack = create_local_stack(load_queue_settings().scaled_for_local(1))
    boto3.client("scheduler").create_schedule(
        Name="invoice-producer",
        ScheduleExpression="rate(15 minutes)",
        State="DISABLED",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:producer",
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
        },
    )
    with ModelEmulator(api_key=KEY) as model:
        for name, value in {
            "QUEUE_URL": stack.queue_url,
            "ALLOWED_BUCKETS": stack.bucket,
            "LLM_MODELS": f"{MODEL},ocr-table-v1",
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": model.base_url,
            "MAX_RECEIVE_COUNT": str(stack.settings.max_receive_count),
            "SCHEDULE_NAME": "invoice-producer",
        }.items():
            monkeypatch.setenv(name, value)
        reset_client_caches()
        yield model
    reset_client_caches()


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["doctor"])
    return code, capsys.readouterr().out.splitlines()


def test_a_healthy_local_stack_passes_every_check(deployment: ModelEmulator, capsys: pytest.CaptureFixture[str]):
    code, lines = doctor(capsys)

    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == [
        "ok   database",
        "ok   migrations",
        f"ok   model {MODEL}",
        "n/a  model ocr-table-v1",
        "ok   prices",
        "ok   bucket invoice-images",
        "ok   queue",
        "ok   schedule",
    ]
    assert "invoice-extraction-dlq after 5 receives" in lines[6]
    assert "invoice-producer DISABLED rate(15 minutes) (paused" in lines[7]
    assert deployment.requests == 0  # models.retrieve only: no completion was paid for


def test_a_wrong_key_a_missing_bucket_and_a_pending_migration_each_fail_their_line(
    deployment: ModelEmulator,
    sql: pg8000.native.Connection,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")
    monkeypatch.setenv("ALLOWED_BUCKETS", "invoice-images,nobody-made-this-bucket")
    sql.run("DELETE FROM benchmarking.schema_migrations WHERE version = 3")

    code, lines = doctor(capsys)

    assert code == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == [
        "FAIL migrations",
        f"FAIL model {MODEL}",
        "FAIL bucket nobody-made-this-bucket",
    ]
    assert "0003_ground_truth_and_warnings" in failed[0]
    assert "key rejected or model not enabled: AuthenticationError: Error code: 401" in failed[1]
    assert "sk-placeholder" not in "\n".join(lines)
    assert "ok   bucket invoice-images: readable" in lines


def test_a_queue_without_a_dead_letter_queue_fails(
    deployment: ModelEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("QUEUE_URL", boto3.client("sqs").create_queue(QueueName="no-dlq")["QueueUrl"])
    monkeypatch.delenv("SCHEDULE_NAME")

    code, lines = doctor(capsys)

    assert code == 1
    assert [line for line in lines if line.startswith(("FAIL", "n/a  schedule"))] == [
        f"FAIL queue: queue {boto3.client('sqs').get_queue_url(QueueName='no-dlq')['QueueUrl']} has no "
        "RedrivePolicy, so no dead-letter queue",
        "n/a  schedule: SCHEDULE_NAME not set (the stack output ScheduleName)",
    ]


def test_bedrock_models_are_checked_with_a_one_token_call_and_textract_has_no_key(
    deployment: ModelEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from local.aws_emulators import BedrockEmulator

    with BedrockEmulator() as runtime:
        for name, value in runtime.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("LLM_MODELS", f"bedrock/amazon.nova-pro-v1:0,textract/analyze-expense,{MODEL}")
        reset_client_caches()

        code, lines = doctor(capsys)

    assert code == 0, lines
    models = [line for line in lines if " model " in line]
    assert [line.split(": ")[0] for line in models] == [
        "ok   model bedrock/amazon.nova-pro-v1:0",
        "n/a  model textract/analyze-expense",
        f"ok   model {MODEL}",
    ]


def test_every_configured_model_without_a_price_is_named_until_model_prices_sets_one(
    deployment: ModelEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LLM_MODELS", f"{MODEL},mystery-model,bedrock/apac.amazon.nova-lite-v1:0,ocr-table-v1")
    code, lines = doctor(capsys)
    (prices,) = [line for line in lines if line.split(":")[0].endswith("prices")]
    assert code == 1 and prices.startswith("FAIL prices: no price for mystery-model, bedrock/apac.amazon.nova-lite")
    assert "MODEL_PRICES" in prices

    monkeypatch.setenv("LLM_MODELS", f"{MODEL},mystery-model")
    monkeypatch.setenv("MODEL_PRICES", '{"mystery-model": {"input": 1, "output": 4}}')
    code, lines = doctor(capsys)
    assert "ok   prices: each of LLM_MODELS has a price" in "\n".join(lines)
