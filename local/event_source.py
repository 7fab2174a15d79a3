"""An SQS event-source mapping emulator: what Lambda's poller does for an SQS-triggered function, on one machine.

It long-polls the queue, hands each batch to ``handler(event, context)`` as the real SQS event (the same
record fields Lambda sends), honours partial batch responses (``batchItemFailures``: only the successes are
deleted; an exception, a timeout or a malformed response fails the whole batch), and leaves failures in the
queue so they come back after the visibility timeout. The queue's own redrive policy (moto implements it)
moves a message to the DLQ after ``maxReceiveCount`` receives, exactly as in AWS.

At most ``max_concurrency`` invocations run at once: one worker thread per concurrent execution environment,
like the mapping's maximum concurrency. A Lambda container runs one invocation at a time, so a handler
module may keep per-invocation state in globals (Powertools' ``BatchProcessor`` does). Pass
``handler_factory`` (e.g. :func:`fresh_handler`) to give each worker its own copy of the handler module, as
each container has, with its own runtime (settings, connection pool, clients: ``consumer.runtime()``); the domain
modules it imports (``invoice_pipeline``) are shared and keep no per-container state.
"""

from __future__ import annotations

import base64
import importlib.util
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from invoice_pipeline.flows.queue_depth import queue_depth
from local.controls import LocalControls

Handler = Callable[[dict[str, Any], Any], Any]

# Lambda receives at most 10 messages per ReceiveMessage call; larger batches are gathered over several.
SQS_MAX_RECEIVE = 10
# After an empty receive a worker pauses this long (the emulator's stand-in for a long poll).
EMPTY_POLL_PAUSE_SECONDS = 0.2


class FakeLambdaContext:
    """The attributes of ``LambdaContext`` that handlers and Powertools read, with a real deadline."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_limit_in_mb: int = 1024) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class EventSourceStats:
    """What the mapping did: invocations (= batches handed to the handler), records by outcome."""

    invocations: int = 0
    records: int = 0
    succeeded: int = 0
    failed: int = 0
    handler_errors: int = 0  # invocations that raised, timed out or answered malformed: whole batch failed
    max_in_flight: int = 0
    timed_out: bool = False  # drain stopped at its deadline with work left
    errors: list[str] = field(default_factory=list)

    @property
    def batches(self) -> int:
        return self.invocations

    def as_dict(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "records": self.records,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "handler_errors": self.handler_errors,
            "max_in_flight": self.max_in_flight,
            "timed_out": self.timed_out,
        }


def fresh_handler(module_name: str, attribute: str = "handler") -> Callable[[], Handler]:
    """A factory that loads a new, private instance of ``module_name`` per call: one "container" per worker."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot find handler module {module_name!r}")

    def load() -> Handler:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return getattr(module, attribute)  # type: ignore[no-any-return]

    return load


def _drop_unpublished_metrics() -> None:
    """With POWERTOOLS_METRICS_DISABLED (the local stack's setting) Powertools never clears what a handler added, and
    once one metric holds 100 values it prints the whole set as an EMF blob anyway, into a benchmark's table. The
    set is dropped after each invocation instead, as the published set is in Lambda."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    from invoice_pipeline.observability import metrics

    if is_metrics_disabled():
        metrics.clear_metrics()


def _same(handler: Handler) -> Callable[[], Handler]:
    return lambda: handler


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda puts it into the event's ``Records``."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: attributes[name]
            for name in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
                "SequenceNumber",
                "MessageGroupId",
                "MessageDeduplicationId",
                "AWSTraceHeader",
            )
            if name in attributes
        },
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


def failed_message_ids(response: Any, message_ids: list[str]) -> set[str]:
    """Which records failed, per Lambda's partial batch response rules.

    None or a response without ``batchItemFailures`` means all succeeded; an entry whose ``itemIdentifier``
    is missing, empty or not in the batch makes Lambda treat the whole batch as failed.
    """
    if response is None or not isinstance(response, Mapping) or response.get("batchItemFailures") is None:
        return set()
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return set(message_ids)
    failed: set[str] = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


class SqsEventSource:
    """``SqsEventSource(queue_url, handler).drain()`` processes the queue until it is empty and nothing is in flight."""

    def __init__(
        self,
        queue_url: str,
        handler: Handler | None = None,
        *,
        handler_factory: Callable[[], Handler] | None = None,
        batch_size: int = 10,
        max_batching_window_seconds: float = 0.0,
        max_concurrency: int = 2,
        function_timeout_seconds: float = 30.0,
        function_name: str = "consumer",
        wait_time_seconds: int = 1,
        sqs_client: Any = None,
        on_batch: Callable[[EventSourceStats], None] | None = None,
        controls: Callable[[], LocalControls] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if (handler is None) == (handler_factory is None):
            raise ValueError("pass exactly one of handler and handler_factory")
        self.queue_url = queue_url
        self.handler_factory: Callable[[], Handler] = handler_factory or _same(handler)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.max_batching_window_seconds = max_batching_window_seconds
        self.max_concurrency = max_concurrency
        self.function_timeout_seconds = function_timeout_seconds
        self.function_name = function_name
        self.wait_time_seconds = wait_time_seconds
        self.sqs = sqs_client or boto3.client("sqs")
        self.on_batch = on_batch
        # Read while draining: pause (no new receives) and a new maximum concurrency take effect within a tick.
        self.controls = controls
        self._active = max_concurrency
        self.stats = EventSourceStats()
        self._lock = threading.Lock()
        # moto's ReceiveMessage is not thread-safe: two receives racing for a message due for the DLQ fail with
        # a server error and leave it invisible for a whole visibility timeout. One receive at a time.
        self._receive_lock = threading.Lock()
        self._in_flight = 0
        self._stop = threading.Event()
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn: str = attributes["QueueArn"]
        self.region = self.queue_arn.split(":")[3]

    # -- running -------------------------------------------------------------------------------------------

    def drain(self, *, until_idle: bool = True, timeout_seconds: float | None = None) -> EventSourceStats:
        """Poll with ``max_concurrency`` workers until the queue is idle (if ``until_idle``), the timeout passes,
        or :meth:`stop` is called (Ctrl-C also stops it). Returns the statistics of this mapping so far."""
        self._stop.clear()
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        workers: list[threading.Thread] = []
        self._apply_controls(workers)
        idle_checks = 0
        try:
            while not self._stop.is_set():
                self._apply_controls(workers)
                if deadline is not None and time.monotonic() >= deadline:
                    self.stats.timed_out = not self.is_idle()
                    break
                if until_idle:
                    # Two consecutive idle readings: a worker may be between receiving and counting itself.
                    idle_checks = idle_checks + 1 if self.is_idle() else 0
                    if idle_checks >= 2:
                        break
                self._stop.wait(0.2)
        finally:
            self._stop.set()
            for worker in workers:
                worker.join()
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    def _apply_controls(self, workers: list[threading.Thread]) -> None:
        """Set how many workers may receive (0 when paused); start more if the maximum went up."""
        active = self.max_concurrency
        if self.controls is not None:
            controls = self.controls()
            active = 0 if controls.paused else (controls.max_concurrency or self.max_concurrency)
        self._active = active
        while len(workers) < active:
            worker = threading.Thread(
                target=self._poll, args=(len(workers),), name=f"{self.function_name}-{len(workers)}", daemon=True
            )
            workers.append(worker)
            worker.start()

    def is_idle(self) -> bool:
        """Nothing visible, delayed or in flight in the queue, and no invocation running."""
        with self._lock:
            if self._in_flight:
                return False
        return queue_depth(self.sqs, self.queue_url).total == 0

    # -- one worker = one concurrent execution environment ---------------------------------------------------

    def _poll(self, number: int = 0) -> None:
        handler = self.handler_factory()  # this worker's "container"
        while not self._stop.is_set():
            if number >= self._active:  # paused, or above the current maximum concurrency
                self._stop.wait(EMPTY_POLL_PAUSE_SECONDS)
                continue
            try:
                messages = self._receive_batch()
            except Exception as error:  # the poller keeps going, as Lambda's does; the error is kept
                with self._lock:
                    self.stats.errors.append(f"receive: {type(error).__name__}: {error}")
                self._stop.wait(1.0)
                continue
            if messages:
                try:
                    self._invoke(handler, messages)
                finally:
                    with self._lock:
                        self._in_flight -= 1
            else:
                self._stop.wait(EMPTY_POLL_PAUSE_SECONDS if self.wait_time_seconds else 0.02)

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.max_batching_window_seconds
        while len(messages) < self.batch_size and not self._stop.is_set():
            try:
                with self._receive_lock:
                    response = self._receive(len(messages))
            except Exception:
                if messages:
                    break  # hand over what was gathered; the next poll reports the error
                raise
            received = response.get("Messages", [])
            if received and not messages:
                # Received messages are invisible in the queue until deleted, so is_idle sees them either way.
                with self._lock:
                    self._in_flight += 1
            messages.extend(received)
            if not received or time.monotonic() >= window_ends:
                break
        return messages

    def _receive(self, gathered: int) -> dict[str, Any]:
        response: dict[str, Any] = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(SQS_MAX_RECEIVE, self.batch_size - gathered),
            # Short polls while holding the receive lock (a long poll would hold up the other workers); an
            # empty poll waits outside the lock instead (see _poll).
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return response

    def _invoke(self, handler: Handler, messages: list[dict[str, Any]]) -> None:
        """Invoke the handler once for ``messages`` (already counted in flight) and settle the batch."""
        with self._lock:
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
        event = {"Records": [lambda_record(message, self.queue_arn, self.region) for message in messages]}
        ids = [message["MessageId"] for message in messages]
        context = FakeLambdaContext(self.function_name, self.function_timeout_seconds)
        started = time.monotonic()
        error: str | None = None
        try:
            response = handler(event, context)
            failed = failed_message_ids(response, ids)
        except Exception as exc:  # a Lambda function error: the whole batch goes back to the queue
            failed, error = set(ids), f"{type(exc).__name__}: {exc}"
        finally:
            _drop_unpublished_metrics()
        if error is None and time.monotonic() - started > self.function_timeout_seconds:
            failed, error = set(ids), f"timed out after {self.function_timeout_seconds:g} s"
        succeeded = [message for message in messages if message["MessageId"] not in failed]
        self._delete(succeeded)
        with self._lock:
            self.stats.invocations += 1
            self.stats.records += len(messages)
            self.stats.succeeded += len(succeeded)
            self.stats.failed += len(messages) - len(succeeded)
            if error is not None:
                self.stats.handler_errors += 1
                self.stats.errors.append(error)
        if self.on_batch is not None:
            self.on_batch(self.stats)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_RECEIVE):
            chunk = messages[start : start + SQS_MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]} for n, message in enumerate(chunk)],
            )


def drain_together(sources: list[SqsEventSource], *, timeout_seconds: float | None = None) -> list[EventSourceStats]:
    """Drain several mappings of the same function at once (the main queue and the priority lane: each its own
    poller and maximum concurrency, as Lambda runs two event source mappings); returns each one's statistics."""
    results: list[EventSourceStats | None] = [None] * len(sources)

    def run(index: int) -> None:
        results[index] = sources[index].drain(until_idle=True, timeout_seconds=timeout_seconds)

    threads = [threading.Thread(target=run, args=(index,), name=f"lane-{index}") for index in range(len(sources))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [stats if stats is not None else source.stats for stats, source in zip(results, sources, strict=True)]
