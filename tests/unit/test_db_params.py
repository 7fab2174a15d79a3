import ssl
import traceback

import pytest

from invoice_pipeline.settings import ConfigError, parse_database
from invoice_pipeline.tables.db import params_from_url, ssl_context_for


def test_dsn_is_parsed_with_url_decoding():
    params = params_from_url("postgresql://app%40corp:p%2Fss@db.example.com:6543/orders")
    assert (params.user, params.password, params.host, params.port, params.database) == (
        "app@corp",
        "p/ss",
        "db.example.com",
        6543,
        "orders",
    )
    assert "p/ss" not in params.describe()


def test_verify_full_verifies_host_and_chain():
    context = ssl_context_for(parse_database({"DATABASE_URL": "postgresql://a@b/c"}))
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_require_and_disable_are_never_none():
    # pg8000 treats None as "try TLS, silently fall back to plain text".
    assert ssl_context_for(parse_database({"DATABASE_URL": "postgresql://a@b/c", "DB_SSLMODE": "require"})) is True
    assert ssl_context_for(parse_database({"DATABASE_URL": "postgresql://a@b/c", "DB_SSLMODE": "disable"})) is False


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:S3cr3t#x@db.example.com:5432/orders",  # '#' starts a fragment: port "S3cr3t"
        "postgresql://app:12/S3cr3t@db.example.com:5432/orders",  # '/' ends the host part: host "app", port 12
        "postgresql://app:12?S3cr3t@db.example.com/orders",  # '?' starts a query
        "postgresql://app:12#S3cr3t@db.example.com/orders",
        "mysql://app:S3cr3t@db.example.com/orders",
    ],
)
def test_a_malformed_dsn_is_a_configuration_error_that_never_echoes_the_password(dsn: str) -> None:
    for parse in (lambda: params_from_url(dsn), lambda: parse_database({"DATABASE_URL": dsn})):
        with pytest.raises(ConfigError) as raised:
            parse()
        shown = "".join(traceback.format_exception(raised.value))
        assert "DATABASE_URL" in str(raised.value)
        assert "S3cr3t" not in shown and "12" not in str(raised.value)
