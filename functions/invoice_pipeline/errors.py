"""Error types that decide what happens to a message: retry through SQS, wait, or record and give up.

Every failure of the pipeline ends as one of four kinds (docs/architecture.md §9):

- :class:`TransientError` means "try again later" (5xx, timeouts, lost connections): the record fails and
  SQS redelivers it; on the last allowed receive the job becomes ``failed``.
- :class:`PermanentError` means "this will never work as it is" (bad message, unknown order, refused URL,
  missing object, not an image, model refusal, exhausted quota, more lines than allowed, a value Postgres
  refuses as data, SQLSTATE class 22): the job is marked ``failed`` with the
  reason and the message goes to the DLQ without calling the model again.
- :class:`ConfigurationError` means "a human must fix the deployment" (model credentials rejected, model not
  enabled, access denied, missing secret): retried with a long backoff and never marks the job ``failed``.
- :class:`Throttled` means "the provider is busy": the job waits for the time the provider names; it is
  neither a failure nor an attempt.

Providers raise these types at their own boundary; :func:`classify` is then a type check, with fallbacks
for errors that reach it untranslated (boto ``ClientError`` of S3, OpenAI SDK errors).
"""

from __future__ import annotations

import math
import sys
from typing import Literal


class PipelineError(Exception):
    """Base of the pipeline's own errors; ``str(error)`` is what goes into ``last_error``."""


class PermanentError(PipelineError):
    """Retrying the same input cannot succeed."""


class TransientError(PipelineError):
    """The same input may succeed later."""


class ConfigurationError(PipelineError):
    """The deployment, not the input, is wrong: credentials rejected, model not enabled, access denied, missing
    secret. Retried with a long backoff; the job is never marked ``failed`` for it (docs/architecture.md §9)."""


class Throttled(TransientError):
    """The provider refused the call for its rate limit; ``retry_after_seconds`` is the wait it named, if any: never
    negative, and None for a value that is not a finite number (a broken or hostile header names no wait)."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        if retry_after_seconds is not None and not math.isfinite(retry_after_seconds):
            retry_after_seconds = None
        self.retry_after_seconds = None if retry_after_seconds is None else max(0.0, retry_after_seconds)


class QuotaExhausted(PermanentError):
    """The account's quota or credit is used up (OpenAI ``insufficient_quota``): no wait will help."""


class DatabaseConnectError(TransientError):
    """Postgres could not be reached or refused the login. Names the host, never the password."""


class InvalidMessage(PermanentError):
    """The SQS body is not a valid job message (docs/architecture.md §6)."""


class OrderNotFound(PermanentError):
    """The message names an order that does not exist."""

    def __init__(self) -> None:
        super().__init__("order not found")


class InvalidImageUrl(PermanentError):
    """``invoice_image`` holds something other than allow-listed S3 URLs; nothing was fetched."""


class ImageRejected(PermanentError):
    """An object is missing, forbidden, too large, not an image or PDF, or unreadable."""


class ModelRefusal(PermanentError):
    """The model refused to answer (``message.refusal``)."""


class CannotReadHere(PermanentError):
    """The extractor cannot read this kind of document where it runs (a scan where the OCR runtime is not
    deployed): alone it is the order's permanent error; in a cascade the next stage reads the invoice."""


class TooManyItems(PermanentError):
    """The model returned more lines for one invoice than ``MAX_ITEMS_PER_INVOICE``: nothing of the order is written."""


class JobBusy(TransientError):
    """Another delivery holds the job inside its lease; try again later, ledger untouched."""


class AlreadyFailed(PermanentError):
    """This very message already failed permanently: fail fast until it reaches the DLQ."""


class NotEnoughTime(TransientError):
    """Too little of the invocation is left to finish this record safely."""


class ClaimLost(TransientError):
    """The job's claim was taken over (lease expired) before the write; nothing was written."""


Kind = Literal["transient", "permanent", "configuration", "throttled"]

# Error codes of AWS services (S3 reads) that will never succeed on retry.
_PERMANENT_AWS_CODES = frozenset(
    {"NoSuchKey", "NoSuchBucket", "AccessDenied", "AllAccessDisabled", "InvalidObjectState", "404", "403", "400"}
)
# OpenAI error codes that need a human to change the deployment (key, model access), not the input.
_CONFIGURATION_MODEL_CODES = frozenset({"invalid_api_key", "model_not_found"})
# How OpenAI starts a 429 for ONE request larger than the model's per-minute limit: no wait makes it fit.
REQUEST_TOO_LARGE = "Request too large"


def classify(error: BaseException) -> Kind:
    """THE mapping from any exception to what happens next (see the module docstring for each kind).

    Unknown exceptions are transient: a bug or an outage is retried, and on the last receive the job is
    marked ``failed`` with the error, so nothing is lost either way.
    """
    if isinstance(error, PermanentError):
        return "permanent"
    if isinstance(error, ConfigurationError):
        return "configuration"
    if isinstance(error, Throttled):
        return "throttled"
    if isinstance(error, TransientError):
        return "transient"
    aws = _classify_aws(error)
    if aws is not None:
        return aws
    if _is_data_exception(error):
        return "permanent"
    model = _classify_model(error)
    if model is not None:
        return model
    return "transient"


def _classify_aws(error: BaseException) -> Kind | None:
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is None or not isinstance(error, botocore.ClientError):
        return None
    code = str(error.response.get("Error", {}).get("Code", ""))
    return "permanent" if code in _PERMANENT_AWS_CODES else "transient"


def _database_fields(error: BaseException) -> dict[str, str] | None:
    """The server's fields of a pg8000 ``DatabaseError`` (``C`` the SQLSTATE, ``M`` the message), else None."""
    pg8000 = sys.modules.get("pg8000.exceptions")
    if pg8000 is None or not isinstance(error, pg8000.DatabaseError):
        return None
    fields = error.args[0] if error.args else None
    return fields if isinstance(fields, dict) else None


def _is_data_exception(error: BaseException) -> bool:
    """Postgres refused a value (SQLSTATE class 22: bad encoding, numeric overflow...): the same data fails again."""
    fields = _database_fields(error)
    return fields is not None and str(fields.get("C", "")).startswith("22")


def _classify_model(error: BaseException) -> Kind | None:
    """OpenAI SDK errors, recognised without importing the SDK (it loads only when a model is called)."""
    openai = sys.modules.get("openai")
    if openai is None or not isinstance(error, openai.OpenAIError):
        return None
    if isinstance(error, openai.LengthFinishReasonError | openai.ContentFilterFinishReasonError):
        return "permanent"  # the same image produces the same truncated or filtered answer
    if isinstance(error, openai.APIConnectionError):  # includes timeouts
        return "transient"
    if isinstance(error, openai.APIStatusError):
        code = getattr(error, "code", None)
        status = error.status_code
        if code == "insufficient_quota":
            return "permanent"  # an exhausted account needs a human, then a redrive
        if code in _CONFIGURATION_MODEL_CODES or status in (401, 403):
            return "configuration"
        body = getattr(error, "body", None)
        message = body.get("message") if isinstance(body, dict) else None
        if status == 429 and isinstance(message, str) and message.startswith(REQUEST_TOO_LARGE):
            return "permanent"
        if status == 429:
            return "throttled"
        if status in (408, 409) or status >= 500:
            return "transient"
        return "permanent"  # 400 (e.g. image rejected), 404, 422: the same request fails again
    return "transient"


def describe(error: BaseException) -> str:
    """What goes into ``last_error``: our own errors verbatim, others with their type; bounded. A Postgres error
    is its message and SQLSTATE (pg8000 carries the server's whole field dict, with source file and line)."""
    fields = _database_fields(error)
    if fields is not None:
        text = f"{type(error).__name__}: {fields.get('M', '')} (SQLSTATE {fields.get('C', '?')})"
    else:
        text = str(error) if isinstance(error, PipelineError) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


MAX_ERROR_CHARS = 1000


class QueueUnavailableError(PipelineError):
    """SQS refused a call as a whole (wrong queue URL, missing permission, no endpoint): the producer run fails
    after releasing every claim it could not send."""
