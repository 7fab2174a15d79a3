"""Bad input to the consumer's parsers: a classified error (PermanentError/TransientError) or a valid result."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from invoice_pipeline.documents.urls import parse_invoice_image
from invoice_pipeline.errors import PipelineError
from invoice_pipeline.flows.consume import parse_message

MODELS = ("gpt-4o-2024-11-20", "gpt-4.1-mini")
ALLOWED = frozenset({"invoices", "chaos-invoices"})
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "order_id": st.integers() | st.text(max_size=12) | st.floats() | st.none() | st.booleans(),
        "llm": st.sampled_from([*MODELS, "", "gpt-2", None]) | st.text(max_size=12) | st.integers(),
        "extra": json_values,
    },
)


def _parse(body: str) -> None:
    try:
        order_id, llm = parse_message(body, MODELS)
    except PipelineError as error:
        assert str(error)  # says what is wrong
        return
    assert isinstance(order_id, int) and 1 <= order_id < 2**63
    assert llm in MODELS


@FUZZ
@given(st.text(max_size=200))
def test_any_text_body_parses_or_is_a_classified_error(body: str) -> None:
    _parse(body)


@FUZZ
@given(st.one_of(message_like, json_values))
def test_any_json_body_parses_or_is_a_classified_error(value: object) -> None:
    _parse(json.dumps(value))


url_parts = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["s3://", "https://", "http://", "file://", "//", "S3://", "HTTPS://", ""]),
    st.sampled_from(
        [
            "invoices",
            "invoices.s3.amazonaws.com",
            "invoices.s3.eu-west-1.amazonaws.com",
            "s3.amazonaws.com/invoices",
            "s3.us-east-1.amazonaws.com/chaos-invoices",
            "evil.com",
            "invoices.s3.amazonaws.com@evil.com",
            "169.254.169.254",
            "invoices.s3.amazonaws.com.evil.com",
            "other-bucket",
            "[::1]",
        ]
    ),
    st.sampled_from(["", ":443", ":80", ":99999", ":x"]),
    st.builds(
        "/{}".format,
        st.lists(
            st.sampled_from(["a", "..", ".", "%2e%2e", "%2F", "%00", "%0a", "x.png", "?q=1", "#f", "%", "%zz", "ü"])
            | st.text(max_size=5),
            max_size=5,
        ).map("/".join),
    ),
)


def _locations(value: str) -> None:
    try:
        locations = parse_invoice_image(value, ALLOWED)
    except PipelineError as error:
        assert str(error)
        return
    for location in locations:
        assert location.bucket in ALLOWED
        assert location.key and ".." not in location.key.split("/")
        assert not any(ord(ch) < 32 for ch in location.key)


@FUZZ
@given(st.text(max_size=200))
def test_any_invoice_image_text_is_locations_in_allowed_buckets_or_a_classified_error(value: str) -> None:
    _locations(value)


@FUZZ
@given(st.lists(url_parts, min_size=1, max_size=3), st.sampled_from([" ", ",", "\n", "json"]))
def test_url_like_invoice_images_never_leave_the_allow_list(urls: list[str], separator: str) -> None:
    _locations(json.dumps(urls) if separator == "json" else separator.join(urls))


# --- provider rate-limit headers ---------------------------------------------------------------------------------
# Every remote provider's answer, a 429 or a 200, may carry any value in its rate-limit headers. Whatever they say,
# the model's shared budget row stays within [0, limit] (and its block within MAX_PROVIDER_WAIT_SECONDS), and the
# job ends in a ledger state: done when answered, queued (handed back) when throttled, never failed for a header and
# never stuck `processing`.

HOSTILE_VALUES = [
    "-1",
    "-1e300",
    "1e300",
    "9" * 5000,
    "nan",
    "inf",
    "-inf",
    "1e400",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Mon, 01 Jan 1900 00:00:00 GMT",
    "Sun, 32 Foo 2026 25:61:61 GMT",
    "0x10",
    "1_000",
    "6m0s",
    "99999999999h",
    "garbage",
]
header_value = st.sampled_from(HOSTILE_VALUES) | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=16
)
RATE_LIMIT_HEADERS = [
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-reset-requests",
]
hostile_headers = st.dictionaries(st.sampled_from(RATE_LIMIT_HEADERS), header_value, min_size=1, max_size=8)
# Per provider: its throttling fault (the OpenAI emulator's "headers" fault is a normal 200 with the headers).
PROVIDER_FAULTS = {
    "openai": ("rate_limit", "headers"),
    "bedrock": ("ThrottlingException", None),
    "textract": ("ProvisionedThroughputExceededException", None),
}
TPM, RPM, MARGIN = 1_000_000, 1_000, 0.05
HEADER_FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(PROVIDER_FAULTS))
def test_provider_rate_limit_headers_keep_the_budget_in_bounds_and_every_job_in_a_ledger_state(
    name: str, database: str, sql, aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoice_pipeline.pacing.budget import Budget, set_budget
    from invoice_pipeline.settings import DEFAULT_MAX_PROVIDER_WAIT_SECONDS
    from invoice_pipeline.tables import db
    from tests.events.builders import sqs_record
    from tests.integration.consumer.test_providers import SAMPLE, arrange, provider
    from tests.integration.queues import create_queue_with_dlq

    order_ids = iter(range(700_000, 800_000))
    with provider(name) as chosen:
        pipeline = arrange(chosen, sql, monkeypatch)
        create_queue_with_dlq("invoice-jobs", visibility_seconds=1800, max_receive_count=5)  # hand-backs go here
        image = pipeline.put_image(f"orders/fuzz/{SAMPLE.filename}", SAMPLE.data)
        chosen.emulator.register(SAMPLE.stamp, SAMPLE.answer)
        throttled, answered = PROVIDER_FAULTS[name]

        @HEADER_FUZZ
        @given(headers=hostile_headers, throttle=st.booleans() if answered else st.just(True))
        @example(headers={"x-ratelimit-remaining-tokens": "-1e300"}, throttle=answered is None)
        @example(headers={"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT", "retry-after-ms": "x"}, throttle=True)
        @example(headers={"retry-after": "1e400", "retry-after-ms": "nan"}, throttle=True)
        @example(headers={"x-ratelimit-remaining-requests": "inf", "retry-after": "-5"}, throttle=answered is None)
        def one_job(headers: dict[str, str], throttle: bool) -> None:
            with db.pool.connection() as connection:
                set_budget(connection, Budget(chosen.llm, tpm=TPM, rpm=RPM, margin=MARGIN))
            chosen.emulator.clear_faults()
            chosen.emulator.inject(throttled if throttle else answered, headers=headers)
            order_id = next(order_ids)
            pipeline.add_order(order_id, image)

            pipeline.run(sqs_record({"order_id": order_id, "llm": chosen.llm}))

            # Throttled: handed back (`queued`), never failed for it; answered: `done`.
            status = pipeline.job(order_id, chosen.llm)["status"]
            assert status == ("queued" if throttle else "done"), (headers, status)
            tokens, requests, blocked = sql.run(
                "SELECT least(tpm * (1 - margin), tokens + tpm * (1 - margin)"
                "         * greatest(0, extract(epoch FROM clock_timestamp() - refilled_at)) / window_seconds),"
                "       least(rpm * (1 - margin), requests + rpm * (1 - margin)"
                "         * greatest(0, extract(epoch FROM clock_timestamp() - refilled_at)) / window_seconds),"
                "       extract(epoch FROM blocked_until - clock_timestamp())"
                " FROM benchmarking.model_budgets WHERE llm = :llm",
                llm=chosen.llm,
            )[0]
            assert 0 <= float(tokens) <= TPM, (headers, tokens)
            assert 0 <= float(requests) <= RPM, (headers, requests)
            assert blocked is None or float(blocked) <= DEFAULT_MAX_PROVIDER_WAIT_SECONDS, (headers, blocked)

        one_job()
