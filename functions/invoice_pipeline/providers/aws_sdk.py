"""What the AWS providers (Bedrock, Textract) share: boto3 clients sized to the deadline, and the translation of
botocore errors into the project's error types from each provider's own lists of error codes.

Each provider names its codes (a Bedrock ``ValidationException`` is permanent, a Textract
``ProvisionedThroughputExceededException`` is throttling): nothing here is judged by S3's codes. boto3 is imported
on first use; the region and endpoint are boto3's own (the function's region; ``AWS_ENDPOINT_URL_<SERVICE>``
points a service at a local emulator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invoice_pipeline.clients import AwsClients, ClientConfig
from invoice_pipeline.errors import ConfigurationError, PermanentError, Throttled, TransientError
from invoice_pipeline.ratelimits import retry_after_seconds

# Credentials or signing refused: the deployment is wrong for every request, whatever the service.
_CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "MissingAuthenticationToken"}
)


def client(clients: AwsClients, service: str, *, timeout: float, retries: int) -> Any:
    """The runtime's client whose attempts (``retries + 1``, botocore's standard retry mode) each time out after
    ``timeout``; one per whole second of timeout, since creating one costs tens of milliseconds."""
    return clients.get(service, ClientConfig(read_timeout=max(1, int(timeout)), attempts=retries + 1))


@dataclass(frozen=True)
class ErrorCodes:
    """A provider's own error codes, by what they mean for the job (docs/architecture.md §9)."""

    throttled: frozenset[str]
    transient: frozenset[str]
    permanent: frozenset[str]
    configuration: frozenset[str]


def translate(error: Exception, codes: ErrorCodes, *, service: str) -> Exception:
    """A botocore error as the project's error type; any other exception unchanged.

    Codes a provider does not list are judged by HTTP status: 5xx transient, anything else permanent (the same
    request fails again).
    """
    from botocore import exceptions

    if isinstance(error, exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{service} {code}: {message}"
        if code in codes.throttled:
            return Throttled(text, retry_after_seconds=_retry_after(error.response))
        if code in codes.configuration or code in _CREDENTIAL_CODES:
            return ConfigurationError(text)
        if code in codes.transient or status >= 500:
            return TransientError(text)
        return PermanentError(text)
    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError | exceptions.NoRegionError):
        return ConfigurationError(f"{service}: {error}")
    if isinstance(error, exceptions.ParamValidationError):
        return PermanentError(f"{service} refused the request before sending it: {error}")
    if isinstance(error, exceptions.BotoCoreError):  # timeouts, lost connections, endpoint unreachable
        return TransientError(f"{service} {type(error).__name__}: {error}")
    return error


def _retry_after(response: dict[str, Any]) -> float | None:
    """The wait a throttled answer names, read as every provider's is (finite, bounded: ratelimits.py)."""
    return retry_after_seconds(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {})
