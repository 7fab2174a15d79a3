"""Lambda's partial batch response rules, as the event-source emulator applies them."""

from __future__ import annotations

from local.event_source import failed_message_ids

IDS = ["a", "b", "c"]


def test_no_response_or_no_failures_means_every_record_succeeded() -> None:
    assert failed_message_ids(None, IDS) == set()
    assert failed_message_ids({}, IDS) == set()
    assert failed_message_ids({"batchItemFailures": []}, IDS) == set()


def test_listed_failures_fail_only_those_records() -> None:
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, IDS) == {"b"}


def test_an_unknown_or_empty_identifier_fails_the_whole_batch() -> None:
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, IDS) == set(IDS)
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, IDS) == set(IDS)
    assert failed_message_ids({"batchItemFailures": [{}]}, IDS) == set(IDS)
    assert failed_message_ids({"batchItemFailures": "b"}, IDS) == set(IDS)
