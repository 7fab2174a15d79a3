from decimal import Decimal

import pytest

from invoice_pipeline import pricing
from invoice_pipeline.errors import NotEnoughTime
from invoice_pipeline.flows.visibility import backoff_seconds, queue_name_and_account
from invoice_pipeline.providers.answer import ModelInvoice
from invoice_pipeline.providers.openai_extractor import PROMPT_VERSION, normalise, request_budget


def test_model_calls_fit_before_the_deadline():
    # The SDK honours a Retry-After of up to 120 s between attempts: even that sleep must fit.
    for remaining in (11, 25, 40, 100, 400, 900):
        timeout, retries = request_budget(remaining)
        assert (retries + 1) * timeout + retries * 120 <= remaining
        assert timeout <= 120
    assert request_budget(900) == (120, 2)
    assert request_budget(14)[1] == 0


def test_no_model_call_without_time_for_one_attempt():
    with pytest.raises(NotEnoughTime):
        request_budget(5)


def test_answers_are_normalised_to_decimals_in_model_order():
    answer = ModelInvoice.model_validate(
        {
            "currency": "kwd",
            "printed_total": "١٬٢٥٠٫٥٠٠",
            "items": [
                {
                    "description": " Tomato\n paste ",
                    "quantity": "٢",
                    "unit": "ctn",
                    "unit_price": "1,250.250",
                    "line_total": "2,500.500",
                },
                {"description": "Onion", "quantity": "", "unit": None, "unit_price": "n/a", "line_total": None},
            ],
        }
    )
    invoice = normalise(answer, invoice_index=3)
    assert invoice.invoice_index == 3 and invoice.currency == "KWD"
    assert invoice.printed_total == Decimal("1250.500")
    first, second = invoice.items
    assert (first.description, first.quantity, first.unit_price, first.line_total) == (
        "Tomato paste",
        Decimal(2),
        Decimal("1250.250"),
        Decimal("2500.500"),
    )
    assert (second.quantity, second.unit_price, second.line_total) == (None, None, None)
    assert PROMPT_VERSION


def test_prices_per_million_tokens():
    assert pricing.cost_usd("gpt-4o-2024-11-20", 1_000_000, 100_000) == Decimal("3.5")
    assert pricing.cost_usd("gpt-4o-mini-2024-07-18", 2_000_000, 0) == Decimal("0.3")
    assert pricing.cost_usd("ocr-rapidocr", 5000, 500) == 0
    assert pricing.cost_usd("someone-elses-model", 5000, 500) is None  # unknown, never free


def test_backoff_grows_with_receive_count_and_is_capped():
    assert 24 <= backoff_seconds(1) <= 36
    assert 96 <= backoff_seconds(3) <= 144
    assert backoff_seconds(30) <= 900 * 1.2


def test_queue_name_from_event_source_arn():
    assert queue_name_and_account("arn:aws:sqs:me-south-1:123456789012:jobs") == ("jobs", "123456789012")
    with pytest.raises(ValueError):
        queue_name_and_account("arn:aws:sns:us-east-1:1:topic")
