"""Saving ground truth keeps who and when, and the replaced version, so a mistake can be undone."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pg8000.native

from invoice_pipeline.tables import db
from invoices_cli import ground_truth
from tests.workbench.conftest import TwoModels

CURRENT = "SELECT line_no, qty, saved_by FROM benchmarking.ground_truth_items WHERE order_id = 1 ORDER BY line_no"


def test_a_save_archives_the_previous_version_and_restore_brings_it_back(
    two_models: TwoModels, sql: pg8000.native.Connection
) -> None:
    original = two_models.truth[1]
    before = sql.run(CURRENT)
    first = original[0]
    wrong = dataclasses.replace(first, items=(dataclasses.replace(first.items[0], quantity=Decimal("77")),))

    with db.pool.connection() as connection:
        ground_truth.load_ground_truth(connection, {1: [wrong]}, saved_by="alice")
        assert ground_truth.saved_by_and_when(connection, 1)[0] == "alice"
        (version,) = ground_truth.ground_truth_versions(connection, 1)

    assert sql.run(CURRENT) == [[1, Decimal("77"), "alice"]]
    assert version.lines == len(before) and version.replaced_by == "alice" and version.saved_by is None

    with db.pool.connection() as connection:
        ground_truth.restore_ground_truth(connection, 1, version.id, saved_by="bob")
        versions = ground_truth.ground_truth_versions(connection, 1)
        restored = ground_truth.read_ground_truth(connection, [1])[1]

    assert [line[:2] for line in sql.run(CURRENT)] == [line[:2] for line in before]
    assert {line[2] for line in sql.run(CURRENT)} == {"bob"}
    assert [invoice.items for invoice in restored] == [invoice.items for invoice in original]
    assert [v.saved_by for v in versions] == ["alice", None]  # newest first: alice's mistake is kept too


def test_a_failed_save_leaves_the_previous_version_whole(two_models: TwoModels, sql: pg8000.native.Connection) -> None:
    before = sql.run(CURRENT)
    first = two_models.truth[1][0]
    # Passes the checks before the transaction, fails inside it (after the archive and the delete): it rolls back.
    unsendable = dataclasses.replace(first.items[0], description="\ud800")  # a lone surrogate is not UTF-8
    broken = dataclasses.replace(first, items=(unsendable,))

    with db.pool.connection() as connection:
        try:
            ground_truth.load_ground_truth(connection, {1: [broken]}, saved_by="alice")
        except (pg8000.native.DatabaseError, UnicodeEncodeError):
            pass
        else:
            raise AssertionError("a description that is not UTF-8 cannot be written")

    assert sql.run(CURRENT) == before
    assert sql.run("SELECT count(*) FROM benchmarking.ground_truth_versions") == [[0]]
