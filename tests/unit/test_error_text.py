"""What reaches `last_error` and the operator: a database refusal as its message and SQLSTATE, not a field dict."""

from __future__ import annotations

from pg8000.exceptions import DatabaseError

from invoice_pipeline.errors import classify, describe


def test_a_data_exception_is_described_by_its_message_and_sqlstate() -> None:
    error = DatabaseError(
        {"S": "ERROR", "V": "ERROR", "C": "22003", "M": "numeric field overflow", "F": "numeric.c", "L": "7474"}
    )
    assert classify(error) == "permanent"
    text = describe(error)
    assert "numeric field overflow" in text and "SQLSTATE 22003" in text
    assert "'S':" not in text and "numeric.c" not in text


def test_other_database_errors_keep_their_message_and_sqlstate_too() -> None:
    text = describe(DatabaseError({"S": "ERROR", "C": "40P01", "M": "deadlock detected"}))
    assert text == "DatabaseError: deadlock detected (SQLSTATE 40P01)"
