"""Error types that decide what happens to a message: retry through SQS, or record and give up.

Every failure of the pipeline ends as one of two kinds. :class:`TransientError` means "try again later"
(rate limits, 5xx, timeouts, lost connections): the record fails and SQS redelivers it.
:class:`PermanentError` means "this will never work as it is" (bad message, unknown order, refused URL,
missing object, not an image, model refusal): the job is marked ``failed`` with the reason and the message
goes to the DLQ without calling the model again.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of the pipeline's own errors; ``str(error)`` is what goes into ``last_error``."""


class PermanentError(PipelineError):
    """Retrying the same input cannot succeed."""


class TransientError(PipelineError):
    """The same input may succeed later."""


class DatabaseConnectError(TransientError):
    """Postgres could not be reached or refused the login. Names the host, never the password."""


class QueueUnavailableError(PipelineError):
    """SQS refused a call as a whole (wrong queue URL, missing permission, no endpoint): the producer run fails
    after releasing every claim it could not send."""
