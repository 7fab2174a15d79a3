"""Builds the app from context: used by ``app.py`` (the CDK CLI) and by the infrastructure tests."""

from __future__ import annotations

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import PipelineConfig
from stacks.pipeline_stack import InvoicePipelineStack


def configure_app(app: App) -> InvoicePipelineStack:
    """Add the stack to ``app`` and make synth fail on any cdk-nag AwsSolutions finding not acknowledged."""
    config = PipelineConfig.from_context(app.node.try_get_context)
    environment = Environment(account=config.account, region=config.region) if config.account or config.region else None
    stack = InvoicePipelineStack(app, config.stack_name, config=config, env=environment)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack
