"""Live controls: pause / resume / concurrency against AWS (moto's scheduler and Lambda) and the local stack,
budget and capacity against the ledger."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from typing import Any

import boto3
import pg8000.native
import pytest

from invoices_cli import controls
from invoices_cli.main import main
from local.controls import read_controls
from local.event_source import SqsEventSource
from tests.integration.cli import run_cli


def schedule(scheduler: Any) -> None:
    scheduler.create_schedule(
        Name="producer-schedule",
        ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:producer",
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": '{"source": "schedule"}',
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
        State="ENABLED",
    )


def consumer_with_event_source(queue_url: str, *, reserved: int | None = None) -> tuple[Any, str]:
    """The consumer function and its event source mapping on the queue, in moto (no Docker: the function is only
    stored, never invoked). Returns the Lambda client and the mapping's UUID."""
    lambda_client = boto3.client("lambda")
    role = boto3.client("iam").create_role(RoleName="consumer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("consumer.py", "def handler(event, context):\n    return {}\n")
    lambda_client.create_function(
        FunctionName="consumer", Runtime="python3.12", Role=role, Handler="consumer.handler",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    if reserved is not None:
        lambda_client.put_function_concurrency(FunctionName="consumer", ReservedConcurrentExecutions=reserved)
    arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    uuid = lambda_client.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="consumer", BatchSize=5, ScalingConfig={"MaximumConcurrency": 5}
    )["UUID"]
    return lambda_client, uuid


def mapping_of(lambda_client: Any, uuid: str) -> dict[str, Any]:
    return dict(lambda_client.get_event_source_mapping(UUID=uuid))


def test_pause_and_resume_switch_the_schedule_and_the_event_source_on_aws(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULE_NAME", "producer-schedule")
    sqs = boto3.client("sqs")
    scheduler = boto3.client("scheduler")  # moto serves it: schedule CRUD
    schedule(scheduler)
    lambda_client, uuid = consumer_with_event_source(stack.queue_url)

    lines = controls.set_paused(True, sqs=sqs, lambda_client=lambda_client, scheduler=scheduler, local=False)

    assert scheduler.get_schedule(Name="producer-schedule")["State"] == "DISABLED"
    kept = scheduler.get_schedule(Name="producer-schedule")
    assert kept["ScheduleExpression"] == "rate(5 minutes)" and kept["Target"]["Input"] == '{"source": "schedule"}'
    assert any("DISABLED" in line for line in lines) and any("disabled" in line for line in lines)
    assert mapping_of(lambda_client, uuid)["State"] == "Disabled"

    controls.set_paused(False, sqs=sqs, lambda_client=lambda_client, scheduler=scheduler, local=False)
    assert scheduler.get_schedule(Name="producer-schedule")["State"] == "ENABLED"
    assert mapping_of(lambda_client, uuid)["State"] == "Enabled"


def test_concurrency_on_aws_stays_within_the_reserved_concurrency(stack: Any) -> None:
    sqs = boto3.client("sqs")
    lambda_client, uuid = consumer_with_event_source(stack.queue_url, reserved=10)

    lines = controls.set_concurrency(8, sqs=sqs, lambda_client=lambda_client, local=False)
    assert "maximum concurrency 8" in lines[0]
    assert mapping_of(lambda_client, uuid)["ScalingConfig"] == {"MaximumConcurrency": 8}

    with pytest.raises(controls.ControlError, match="reserved concurrency"):
        controls.set_concurrency(12, sqs=sqs, lambda_client=lambda_client, local=False)
    assert mapping_of(lambda_client, uuid)["ScalingConfig"] == {"MaximumConcurrency": 8}  # unchanged
    with pytest.raises(controls.ConfigError, match="between 2 and 1000"):
        controls.set_concurrency(1, sqs=sqs, lambda_client=lambda_client, local=False)


def test_the_local_event_source_honours_pause_resume_and_concurrency_while_it_runs(
    stack: Any, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs")
    in_flight: list[int] = []
    running = 0
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal running
        with lock:
            running += 1
            in_flight.append(running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return {"batchItemFailures": []}

    assert run_cli(capsys, "pause")[0] == 0
    assert "PAUSED" in run_cli(capsys, "status")[1]
    for n in range(12):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"order_id": n}))
    reads_while_paused = threading.Semaphore(0)

    def controls_read() -> Any:
        controls_now = read_controls(stack.queue_url)
        if controls_now.paused:
            reads_while_paused.release()
        return controls_now

    source = SqsEventSource(
        stack.queue_url,
        handler,
        batch_size=1,
        max_concurrency=1,
        wait_time_seconds=0,
        controls=controls_read,
    )
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(stats=source.drain(timeout_seconds=60)))
    worker.start()
    for _ in range(3):  # the source has read the controls three times and found them paused (no worker started)
        assert reads_while_paused.acquire(timeout=60)  # a bound on a hang only
    assert source.stats.records == 0  # paused: nothing received

    assert run_cli(capsys, "concurrency", "4")[0] == 0
    assert run_cli(capsys, "resume")[0] == 0
    worker.join()
    stats = result["stats"]
    assert stats.succeeded == 12 and not stats.timed_out
    assert max(in_flight) > 1  # the raised concurrency took effect without a restart
    assert read_controls(stack.queue_url).max_concurrency == 4


def add_done(sql: pg8000.native.Connection, order_id: int, llm: str, tokens: int, seconds: float) -> None:
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, started_at, finished_at,"
        " invoice_count, item_count, input_tokens, output_tokens)"
        " VALUES (:o, :l, 'done', 1, now() - make_interval(secs => :s), now(), 1, 3, :t, 0)",
        o=order_id,
        l=llm,
        s=seconds,
        t=tokens,
    )


def test_budget_is_set_live_and_capacity_follows_from_it(
    sql: pg8000.native.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    for order_id in range(1, 11):
        add_done(sql, order_id, "gpt-4o", tokens=1500, seconds=6)
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts)"
        " SELECT n, 'gpt-4o', 'queued', 0 FROM generate_series(11, 3010) AS n"
    )
    code, out = run_cli(capsys, "budget")
    assert code == 0 and "no budgets" in out
    code, out = run_cli(capsys, "budget", "gpt-4o", "--tpm", "30000", "--rpm", "500", "--margin", "0")
    assert code == 0 and "in effect now" in out
    assert json.loads(run_cli(capsys, "budget", "--json")[1])[0]["tpm"] == 30000

    code, out = run_cli(capsys, "capacity", "--json")
    (plan,) = json.loads(out)
    # 30,000 tokens/min at 1,500 per order: 20 orders/min = 1,200/hour; each holds a consumer 6 s: concurrency 2.
    assert plan["orders_per_hour"] == 1200 and plan["concurrency"] == 2
    assert plan["backlog"] == 3000 and plan["drain_hours"] == 2.5
    code, out = run_cli(capsys, "capacity")
    assert "1200.0 orders/hour at concurrency 2" in out and "drained in 2.5 h" in out

    assert main(["budget", "gpt-4o", "--tpm", "10"]) == 2  # --rpm missing
    assert run_cli(capsys, "budget", "gpt-4o", "--remove")[0] == 0
    assert "no budget (unpaced)" in run_cli(capsys, "capacity")[1]
