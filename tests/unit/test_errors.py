import httpx2 as httpx
import openai
import pg8000.exceptions
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from invoice_pipeline.errors import (
    ConfigurationError,
    ImageRejected,
    InvalidImageUrl,
    JobBusy,
    ModelRefusal,
    OrderNotFound,
    QuotaExhausted,
    Throttled,
    TooManyItems,
    TransientError,
    classify,
    describe,
)

REQUEST = httpx.Request("POST", "http://model/v1/chat/completions")


def status_error(cls, status: int, code: str | None = None):
    body = {"error": {"message": "m", "type": "t", "code": code}}
    response = httpx.Response(status, request=REQUEST, json=body)
    return cls("m", response=response, body=body["error"])


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")


@pytest.mark.parametrize(
    "error",
    [
        OrderNotFound(),
        InvalidImageUrl("x"),
        ImageRejected("x"),
        ModelRefusal("x"),
        client_error("NoSuchKey"),
        client_error("AccessDenied"),
        client_error("404"),
        client_error("403"),
        client_error("NoSuchBucket"),
        status_error(openai.RateLimitError, 429, "insufficient_quota"),
        status_error(openai.BadRequestError, 400, "invalid_image_format"),
        QuotaExhausted("x"),
    ],
)
def test_permanent(error):
    assert classify(error) == "permanent"


@pytest.mark.parametrize(
    "error",
    [
        JobBusy("x"),
        TransientError("x"),
        client_error("SlowDown"),
        client_error("InternalError"),
        client_error("503"),
        EndpointConnectionError(endpoint_url="https://s3"),
        status_error(openai.InternalServerError, 500),
        status_error(openai.InternalServerError, 503),
        openai.APITimeoutError(request=REQUEST),
        openai.APIConnectionError(request=REQUEST),
        ConnectionResetError(),
        RuntimeError("a bug: retried, then failed on the last receive"),
    ],
)
def test_transient(error):
    assert classify(error) == "transient"


@pytest.mark.parametrize(
    "error",
    [
        ConfigurationError("x"),
        status_error(openai.AuthenticationError, 401, "invalid_api_key"),
        status_error(openai.PermissionDeniedError, 403),
        status_error(openai.NotFoundError, 404, "model_not_found"),
    ],
)
def test_configuration(error):
    assert classify(error) == "configuration"


@pytest.mark.parametrize(
    "error",
    [Throttled("x", retry_after_seconds=3.0), status_error(openai.RateLimitError, 429, "rate_limit_exceeded")],
)
def test_throttled(error):
    assert classify(error) == "throttled"


def test_truncated_or_filtered_answers_are_permanent():
    completion = openai.types.chat.ChatCompletion.model_validate(
        {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
    )
    assert classify(openai.LengthFinishReasonError(completion=completion)) == "permanent"
    assert classify(openai.ContentFilterFinishReasonError()) == "permanent"


def test_last_error_is_readable_and_bounded():
    assert describe(OrderNotFound()) == "order not found"
    assert describe(ValueError("bad\nthing")) == "ValueError: bad thing"
    assert len(describe(ImageRejected("x" * 5000))) == 1000


def postgres_error(sqlstate: str) -> pg8000.exceptions.DatabaseError:
    """What pg8000 raises for a server error: one dict of the ErrorResponse fields."""
    return pg8000.exceptions.DatabaseError({"S": "ERROR", "V": "ERROR", "C": sqlstate, "M": "m"})


@pytest.mark.parametrize("sqlstate", ["22021", "22003", "22P02", "22001"])
def test_a_data_exception_from_postgres_is_permanent(sqlstate):
    # the same values fail the same way on every retry: invalid encoding, numeric overflow, bad text, too long
    assert classify(postgres_error(sqlstate)) == "permanent"


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "57014", "08006", "53300"])
def test_other_database_errors_stay_transient(sqlstate):
    assert classify(postgres_error(sqlstate)) == "transient"
    assert classify(pg8000.exceptions.DatabaseError("no fields")) == "transient"


def test_too_many_items_is_permanent():
    assert classify(TooManyItems("invoice 0 has 501 lines")) == "permanent"
