"""The installed `invoices` command, run as an operator runs it: the console script in its own process, against real
Postgres and moto, with the settings in its environment. The other tests call ``invoices_cli.main.main`` in-process;
these cover what only the real command does: the entry point, ``--profile`` / ``--region``, a server that prints its
address and runs until stopped, and the exit codes a shell sees.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pg8000.native
import pytest

from invoice_pipeline.tables.migrations import available_migrations
from local.stack import LocalStack
from tests.conftest import connect
from tests.integration.consumer.conftest import CREATE_ORDERS
from tests.setup_required import missing

REPO = Path(__file__).resolve().parents[2]
COMMAND_SECONDS = 120  # a bound on a hang only


def invoices_script() -> str:
    """The console script ``pip install -e .`` put next to this interpreter."""
    script = Path(sys.executable).parent / "invoices"
    if not script.exists():
        missing(f"the `invoices` command is not installed next to {sys.executable} (make install)")
    return str(script)


def operator_environment(**changes: str | None) -> dict[str, str]:
    """This test's environment (DATABASE_URL, AWS_ENDPOINT_URL, QUEUE_URL ... as the fixtures set them), with this
    checkout's code first on the path; ``None`` removes a variable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "functions"), str(REPO)])}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def invoices(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [invoices_script(), *argv],
        env=env or operator_environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
        cwd=REPO,
    )


def test_migrate_applies_every_migration_once(empty_database: str) -> None:
    first = invoices("migrate")
    assert first.returncode == 0, first.stderr
    count = len(available_migrations())
    assert first.stdout.startswith(f"applied {count} migration(s): ['0001_"), first.stdout

    again = invoices("migrate", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["count"] == 0
    check = connect(empty_database)
    try:
        assert check.run("SELECT count(*) FROM benchmarking.schema_migrations") == [[count]]
    finally:
        check.close()


def test_redrive_no_wait_moves_the_dlq_back_on_the_local_stack(database: str, stack: LocalStack) -> None:
    sqs = boto3.client("sqs")
    for order_id in (1, 2):
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=json.dumps({"order_id": order_id}))

    result = invoices("redrive", "--no-wait")

    assert result.returncode == 0, result.stderr
    assert "moved 2 message(s)" in result.stdout
    bodies = sorted(
        json.loads(m["Body"])["order_id"]
        for m in sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    )
    assert bodies == [1, 2]
    assert "Messages" not in sqs.receive_message(QueueUrl=stack.dlq_url)


def test_doctor_names_a_missing_variable_on_its_line_and_exits_1(database: str, stack: LocalStack) -> None:
    result = invoices("doctor", env=operator_environment(QUEUE_URL=None))

    assert result.returncode == 1
    assert "FAIL queue: QUEUE_URL is not set" in result.stdout.splitlines(), result.stdout


@pytest.fixture
def queue_in_another_region(database: str, aws: Any) -> str:
    """A queue with its DLQ in eu-west-1 (the environment says us-east-1), holding two messages."""
    sqs = boto3.client("sqs", region_name="eu-west-1")
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    url = sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for order_id in (1, 2):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"order_id": order_id}))
    return str(url)


def queue_depth_seen(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["queue"]["visible"])


def test_region_chooses_where_the_queue_is_looked_up(queue_in_another_region: str) -> None:
    env = operator_environment(QUEUE_URL=queue_in_another_region)
    assert env["AWS_REGION"] == "us-east-1"

    assert invoices("status", "--json", env=env).returncode != 0  # no such queue in us-east-1
    assert queue_depth_seen(invoices("--region", "eu-west-1", "status", "--json", env=env)) == 2


def test_profile_supplies_the_credentials_and_region(queue_in_another_region: str, tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[profile operator]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text("[operator]\naws_access_key_id = operator\naws_secret_access_key = s\n")
    env = operator_environment(
        QUEUE_URL=queue_in_another_region,
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
        AWS_SESSION_TOKEN=None,
        AWS_REGION=None,
        AWS_DEFAULT_REGION=None,
    )

    assert queue_depth_seen(invoices("--profile", "operator", "status", "--json", env=env)) == 2


@pytest.fixture
def workbench_process(database: str, sql: pg8000.native.Connection, aws: Any) -> Iterator[tuple[str, int, str]]:
    """`invoices workbench --port 0` running; (host, port, token) from the line it prints; stopped afterwards."""
    sql.run(CREATE_ORDERS)
    env = operator_environment(ALLOWED_BUCKETS="invoices", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [invoices_script(), "workbench", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the line is printed, or the process ends (EOF)
        assert line.startswith("workbench: http://"), (line, process.poll(), process.stderr and process.stderr.read())
        url = urlsplit(line.split(" ", 1)[1].strip())
        assert url.hostname is not None and url.port is not None and url.query.startswith("token=")
        yield url.hostname, url.port, url.query.removeprefix("token=")
    finally:
        process.terminate()
        process.wait(timeout=COMMAND_SECONDS)


def get(host: str, port: int, path: str, cookie: str = "") -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def test_workbench_prints_its_address_and_serves_pages_to_the_token_only(
    workbench_process: tuple[str, int, str],
) -> None:
    host, port, token = workbench_process
    assert host == "127.0.0.1"

    refused, _, _ = get(host, port, "/")
    assert refused in (401, 403)
    status, headers, _ = get(host, port, f"/?token={token}")
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"].split(";")[0]
    status, _, page = get(host, port, "/", cookie)
    assert status == 200 and "<html" in page.lower()
