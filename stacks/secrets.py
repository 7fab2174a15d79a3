"""The secrets the functions read: the database's (existing, RDS format) and, when an OpenAI model is configured,
the OpenAI API key."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import PipelineConfig, is_complete_secret_arn


class PipelineSecrets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, construct_id)
        self.database = _import_secret(self, "Database", config.database.secret_arn)
        self.openai: secretsmanager.ISecret | None = None
        if "openai" not in config.providers:
            return  # no OpenAI model configured: no key to keep, nothing to grant
        if config.openai_secret_arn is not None:
            self.openai = _import_secret(self, "OpenAiApiKey", config.openai_secret_arn)
        else:
            # Created with a random placeholder: the operator puts the real key in after the first deploy
            # (docs/deploy.md); until then the consumer's calls fail with 401 and messages are retried.
            created = secretsmanager.Secret(
                self,
                "OpenAiApiKey",
                description="OpenAI API key for the invoice pipeline consumer (set the value after deploying)",
            )
            Validations.of(created).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-SMG4",
                    reason="An OpenAI API key is issued by OpenAI; no rotation Lambda can create a new one. "
                    "Rotate it in the OpenAI console and put the new value in this secret.",
                )
            )
            self.openai = created


def _import_secret(scope: Construct, construct_id: str, arn: str) -> secretsmanager.ISecret:
    """A complete ARN is granted exactly; a partial one (no random suffix) with the suffix wildcard."""
    if is_complete_secret_arn(arn):
        return secretsmanager.Secret.from_secret_complete_arn(scope, construct_id, arn)
    return secretsmanager.Secret.from_secret_partial_arn(scope, construct_id, arn)
