"""The Powertools objects every handler shares: created once here, imported everywhere else."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from invoice_pipeline.settings import METRICS_NAMESPACE, SERVICE_NAME

# POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE in the environment override these defaults.
logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)


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
