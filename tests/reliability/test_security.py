"""Security promises, checked on the running pipeline: only allow-listed buckets are ever fetched, secrets
never reach the logs, and every SQL statement binds its values."""

from __future__ import annotations

import ast
import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoice_pipeline.observability import logger
from local.aws import MotoServer
from local.chaos import (
    BUCKET,
    HOSTILE_TEXT,
    MODEL,
    OPENAI_TEST_KEY,
    BackendKiller,
    ChaosConfig,
    ChaosStack,
    Run,
    make_orders,
)
from local.postgres import EmbeddedPostgres

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


class Canary:
    """A TCP listener on loopback that counts connections: any request to it means a URL was followed."""

    def __init__(self) -> None:
        self.connections = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def hostile_urls(port: int) -> list[str]:
    here = f"127.0.0.1:{port}"
    return [
        "s3://someone-elses-bucket/invoice.png",
        "https://someone-elses-bucket.s3.amazonaws.com/invoice.png",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "file:///etc/passwd",
        f"http://{here}/invoice.png",
        f"https://{here}/{BUCKET}/invoice.png",
        f"https://{BUCKET}.s3.amazonaws.com@{here}/invoice.png",
        f"https://{BUCKET}.s3.amazonaws.com%40{here}/invoice.png",
        f"https://user:pass@{BUCKET}.s3.amazonaws.com/invoice.png",
        f"https://{BUCKET}.s3.amazonaws.com:{port}/invoice.png",
        f"https://{BUCKET}.s3.amazonaws.com.{here}/invoice.png",
        f"https://s3.amazonaws.com.evil.example/{BUCKET}/invoice.png",
        f"https://s3.amazonaws.com/{BUCKET}/..%2F..%2Fsecrets.png",
        f"s3://{BUCKET}/orders/%2e%2e/%2e%2e/secrets.png",
        f"s3://{BUCKET}/orders/./invoice.png",
        f"s3://{BUCKET}/invoice.png%00.txt",
        f"https://{BUCKET}.s3.amazonaws.com/invoice.png?versionId=1",
        f"//{BUCKET}.s3.amazonaws.com/invoice.png",
        f"gopher://{here}/invoice.png",
        json.dumps([f"s3://{BUCKET}/fine.png", f"http://{here}/second.png"]),
        "'); DROP TABLE orders; --",
    ]


def test_urls_leaving_the_allow_list_are_refused_without_any_request(
    postgres: EmbeddedPostgres, database: str, aws: MotoServer, canary: Canary
) -> None:
    urls = hostile_urls(canary.port)
    with ChaosStack(postgres, database, aws, ChaosConfig()) as stack:
        stack.add_raw_orders([(order_id, 101, url) for order_id, url in enumerate(urls, start=1)])
        assert stack.produce()["enqueued"] == len(urls)
        run = Run("hostile-urls", stack, 0, 0)
        run.drain()
        with stack.sql() as connection:
            jobs = connection.run(
                "SELECT order_id, status, last_error FROM benchmarking.extraction_jobs ORDER BY order_id"
            )
        requests = dict(stack.s3_faults.requests)
        model_requests = stack.model.requests
        dlq = stack.dlq_bodies()
    assert [(order_id, status) for order_id, status, _ in jobs] == [(n, "failed") for n in range(1, len(urls) + 1)]
    for (order_id, _, error), url in zip(jobs, urls, strict=True):
        assert "ALLOWED_BUCKETS" in error or "S3" in error or "URL" in error or "JSON" in error, (order_id, url, error)
    assert len(dlq) == len(urls)
    assert set(requests) <= {"CreateBucket"}, f"S3 saw {requests}"
    assert model_requests == 0
    assert canary.connections == 0


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the handlers' Powertools logger writes (both handlers share it), at DEBUG."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous_stream, previous_level = handler.stream, logger.log_level
    handler.setStream(buffer)
    logger.setLevel(logging.DEBUG)
    yield buffer
    handler.setStream(previous_stream)
    logger.setLevel(previous_level)


def test_secrets_never_appear_in_the_logs(
    postgres: EmbeddedPostgres,
    database: str,
    aws: MotoServer,
    captured_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with ChaosStack(postgres, database, aws, ChaosConfig()) as stack:
        run = Run("secrets", stack, 6, 0)
        stack.add_raw_orders([(100, 101, "s3://someone-elses-bucket/x.png")])
        stack.produce()
        stack.model.inject("server_error", times=4)
        stack.model.inject("refusal", times=1)
        with BackendKiller(database, interval=0.2):
            run.drain()
    output = captured_logs.getvalue() + "\n".join(record.getMessage() for record in caplog.records)
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines() if line.startswith("{")]
    messages = {line.get("message") for line in lines}
    assert {"order extracted", "producer run finished"} <= messages, "the logs were not captured"
    assert any(line.get("level") in ("WARNING", "ERROR") for line in lines), "no failure was logged"
    assert OPENAI_TEST_KEY not in output
    assert postgres.password not in output
    assert database not in output


def test_hostile_text_is_stored_verbatim_and_breaks_nothing(
    postgres: EmbeddedPostgres, database: str, aws: MotoServer
) -> None:
    """Quotes, semicolons and '); DROP TABLE ...' in keys, item names and units, through every module's SQL."""
    with ChaosStack(postgres, database, aws, ChaosConfig()) as stack:
        orders = make_orders(6, first_id=1, hostile=True)
        stack.add_orders(orders)
        hostile_image = HOSTILE_TEXT[0]
        stack.add_raw_orders([(50, 101, hostile_image)])
        assert stack.produce()["enqueued"] == len(orders) + 1
        run = Run("hostile-text", stack, 0, 0)
        run.drain()
        check = stack.check()
        with stack.sql() as connection:
            error = connection.run(
                "SELECT last_error FROM benchmarking.extraction_jobs WHERE order_id = 50 AND llm = :llm", llm=MODEL
            )[0][0]
            names = {row[0] for row in connection.run("SELECT DISTINCT item_name FROM benchmarking.invoice_items")}
            order_rows = connection.run("SELECT count(*) FROM orders")[0][0]
    assert check.problems == [] and check.done == len(orders)  # items equal the truth, text included
    assert names <= set(HOSTILE_TEXT) and len(names) > 1
    assert order_rows == len(orders) + 1
    assert "Robert');" in error  # the refused value is quoted verbatim in the reason


def _is_constant_sql(statement: ast.expr, assigned: dict[str, list[ast.expr]]) -> bool:
    if isinstance(statement, ast.Constant) and isinstance(statement.value, str):
        return True
    if isinstance(statement, ast.Name) and statement.id.isupper():
        return True
    if isinstance(statement, ast.Name) and statement.id in assigned:
        # a local chosen among module constants
        return all(isinstance(value, ast.Name) and value.id.isupper() for value in assigned[statement.id])
    return isinstance(statement, ast.Attribute) and statement.attr == "sql"  # a migration file's SQL text


def _sql_argument_problems(path: Path) -> list[str]:
    """``.run(statement, ...)`` calls, and calls of helpers that pass one of their parameters on as the
    statement: the statement must be a constant (or a local chosen among constants), never built there."""
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    runners: dict[str, int] = {"run": 0}  # callable name -> index of its statement argument
    checks: list[tuple[ast.Call, int, dict[str, list[ast.expr]]]] = []
    for function in functions:
        parameters = [argument.arg for argument in function.args.args]
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run":
                statement = node.args[0] if node.args else None
                if isinstance(statement, ast.Name) and statement.id in parameters and statement.id not in assigned:
                    runners[function.name] = parameters.index(statement.id)
                    continue
            if isinstance(node, ast.Call):
                checks.append((node, 0, assigned))
    problems = []
    for node, _, assigned in checks:
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name not in runners or (name != "run" and not isinstance(node.func, ast.Name)):
            continue
        index = runners[name]
        if len(node.args) <= index:
            continue
        if not _is_constant_sql(node.args[index], assigned):
            where = f"{path.relative_to(FUNCTIONS)}:{node.lineno}"
            problems.append(f"{where}: SQL built at the call site ({ast.unparse(node.args[index])})")
    return problems


def test_every_statement_is_a_constant_with_bound_parameters() -> None:
    files = sorted(FUNCTIONS.rglob("*.py"))
    assert len(files) > 10
    problems = [problem for path in files for problem in _sql_argument_problems(path)]
    assert problems == []
    built = ast.parse("def f(c, x):\n    c.run(f'SELECT {x}')\n    c.run('SELECT ' + x)\n")
    bad = [call for call in ast.walk(built) if isinstance(call, ast.Call)]
    assert not any(_is_constant_sql(call.args[0], {}) for call in bad if call.args)  # the check can fail
