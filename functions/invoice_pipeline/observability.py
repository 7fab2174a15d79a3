"""The Powertools objects every handler shares: created once here, imported everywhere else.

The tracer is created on first use, not at import: Powertools' ``Tracer`` loads the X-Ray SDK (and botocore
with it) when constructed, which was two thirds of the consumer's cold import (``bench/cold_start.py``).
The Lambda service traces each invocation by itself (the functions run with active tracing); the SDK only
adds the handler's subsegment and the patched clients' subsegments, from the first invocation on.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

from invoice_pipeline.settings import METRICS_NAMESPACE, SERVICE_NAME

Handler = TypeVar("Handler", bound=Callable[..., Any])


class LazyTracer:
    """A Powertools ``Tracer`` built on first use; decorates handlers at import without building it.

    Any other attribute (``put_annotation``, ``capture_method``, ``provider``, ...) builds the tracer and is
    read from it, so code written for ``Tracer`` works unchanged.
    """

    def __init__(self, service: str) -> None:
        self._service = service
        self._tracer: Tracer | None = None
        self._lock = threading.Lock()

    @property
    def tracer(self) -> Tracer:
        # Concurrent environments run as threads locally: build exactly one (Tracer patches libraries once).
        with self._lock:
            if self._tracer is None:
                self._tracer = Tracer(service=self._service)
            return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        """``Tracer.capture_lambda_handler``, applied when the handler is first called."""
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            nonlocal traced
            if traced is None:
                traced = self.tracer.capture_lambda_handler(handler)
            return traced(event, context)

        return wrapper  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not a Tracer attribute: copy/pickle probing a half-built instance
            raise AttributeError(name)
        return getattr(self.tracer, name)


# An invocation that records no metric is normal here (a batch whose records were all handed back or left for a
# retry); Powertools warns about it on every such invocation, a line of noise per invocation in the logs and on a
# terminal running the handlers locally. Only that one warning is silenced.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE in the environment override these defaults.
logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = LazyTracer(service=SERVICE_NAME)


def model_metric(name: str, value: float, llm: str, unit: str = "Count") -> None:
    """A metric per model (dimension ``llm``), flushed at once: the handler's shared metrics carry no model."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():  # single_metric prints regardless of POWERTOOLS_METRICS_DISABLED
        return
    with single_metric(
        name=name, unit=MetricUnit(unit), value=value, namespace=metrics.namespace, default_dimensions={}
    ) as metric:
        metric.add_dimension(name="service", value=SERVICE_NAME)
        metric.add_dimension(name="llm", value=llm)
