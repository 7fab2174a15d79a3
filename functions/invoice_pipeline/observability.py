"""The Powertools objects every handler shares: created once here, imported everywhere else."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from invoice_pipeline.settings import METRICS_NAMESPACE, SERVICE_NAME

# POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE in the environment override these defaults.
logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
