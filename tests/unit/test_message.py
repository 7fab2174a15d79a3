import pytest

from invoice_pipeline.errors import InvalidMessage, PermanentError
from invoice_pipeline.flows.consume import parse_message

MODELS = ("gpt-4o-2024-11-20", "gpt-4.1-mini")


def test_llm_defaults_to_the_first_configured_model():
    assert parse_message('{"order_id": 7}', MODELS) == (7, "gpt-4o-2024-11-20")


def test_named_model_and_unknown_fields_are_ignored():
    assert parse_message('{"order_id": 7, "llm": "gpt-4.1-mini", "note": "x"}', MODELS) == (7, "gpt-4.1-mini")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "invalid message body"),
        ("", "invalid message body"),
        ("[1]", "invalid message body"),
        ('{"llm": "gpt-4.1-mini"}', "order_id"),
        ('{"order_id": "7"}', "order_id"),
        ('{"order_id": 7.5}', "order_id"),
        ('{"order_id": true}', "order_id"),
        ('{"order_id": -1}', "order_id"),
        ('{"order_id": 99999999999999999999}', "order_id"),
        ('{"order_id": 7, "llm": 3}', "llm"),
        ('{"order_id": 7, "llm": "gpt-3.5"}', "not in LLM_MODELS"),
    ],
)
def test_bad_bodies_are_permanent_errors_saying_what_is_wrong(body, says):
    with pytest.raises(InvalidMessage, match=says) as raised:
        parse_message(body, MODELS)
    assert isinstance(raised.value, PermanentError)
