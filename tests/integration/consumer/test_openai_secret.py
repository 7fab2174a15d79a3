"""The OpenAI key from Secrets Manager (moto): the bare key, or JSON with api_key."""

import boto3
import pytest

from invoice_pipeline.providers.openai_extractor import api_key_from
from invoice_pipeline.settings import ConfigError, consumer_settings_from


@pytest.mark.parametrize(
    ("secret", "key"), [("sk-plain-key\n", "sk-plain-key"), ('{"api_key": "sk-json-key", "org": "o"}', "sk-json-key")]
)
def test_key_from_a_secret(aws, secret, key):
    arn = boto3.client("secretsmanager").create_secret(Name=f"openai-{key}", SecretString=secret)["ARN"]
    settings = consumer_settings_from(
        {"DATABASE_URL": "postgresql://u@h/d", "ALLOWED_BUCKETS": "b", "OPENAI_SECRET_ARN": arn}
    )
    assert api_key_from(settings.provider("openai")) == key


def test_json_secret_without_api_key_is_a_config_error_naming_the_secret(aws):
    arn = boto3.client("secretsmanager").create_secret(Name="openai-bad", SecretString='{"key": "x"}')["ARN"]
    settings = consumer_settings_from(
        {"DATABASE_URL": "postgresql://u@h/d", "ALLOWED_BUCKETS": "b", "OPENAI_SECRET_ARN": arn}
    )
    with pytest.raises(ConfigError, match="openai-bad"):
        api_key_from(settings.provider("openai"))
