"""Ground truth and validation warnings on a real server (migration 0003)."""

import json
from decimal import Decimal

from invoice_pipeline.extraction.base import ExtractedInvoice, ExtractedItem
from invoice_pipeline.ground_truth import load_ground_truth, read_ground_truth
from invoice_pipeline.migrations import available_migrations, migrate
from local.samples import generate_orders
from tests.conftest import connect


def invoice(index, currency, *items):
    return ExtractedInvoice(index, currency, None, tuple(items))


def test_migrations_apply_in_version_order_with_a_gap_in_the_numbers(empty_database):
    versions = [migration.version for migration in available_migrations()]
    assert versions == sorted(versions) and 3 in versions
    connection = connect(empty_database)
    applied = migrate(connection)
    assert "0003_ground_truth_and_warnings" in applied
    columns = connection.run(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'benchmarking' AND table_name = 'extraction_jobs' AND column_name = 'warnings'"
    )
    assert columns == [["warnings", "jsonb"]]


def test_ground_truth_round_trips_exactly_and_a_reload_replaces_an_order(sql):
    orders = generate_orders(4, seed=9)
    truth = {order_id: [i.truth for i in order.invoices] for order_id, order in enumerate(orders, start=1001)}
    written = load_ground_truth(sql, truth)
    assert written == sum(len(i.items) for invoices in truth.values() for i in invoices)
    read = read_ground_truth(sql, [*truth, 99])
    assert sorted(read) == sorted(truth)
    for order_id, invoices in truth.items():
        assert [i.items for i in read[order_id]] == [i.items for i in invoices]
        assert [i.currency for i in read[order_id]] == [i.currency for i in invoices]
        assert [i.invoice_index for i in read[order_id]] == [i.invoice_index for i in invoices]

    replacement = invoice(0, "KWD", ExtractedItem("Tomatoes", Decimal("2"), "kg", Decimal("0.750"), Decimal("1.500")))
    assert load_ground_truth(sql, {1001: [replacement]}) == 1
    again = read_ground_truth(sql, [1001, 1002])
    assert again[1001] == [replacement]
    assert [i.items for i in again[1002]] == [i.items for i in truth[1002]]


def test_missing_values_are_stored_as_null_even_when_a_whole_column_is_empty(sql):
    item = ExtractedItem(None, None, None, None, None)
    assert load_ground_truth(sql, {7: [invoice(0, None, item, item)]}) == 2
    rows = sql.run(
        "SELECT line_no, item_name, qty, uom, unit_price, net_price, currency"
        " FROM benchmarking.ground_truth_items ORDER BY line_no"
    )
    assert rows == [[1, None, None, None, None, None, None], [2, None, None, None, None, None, None]]
    assert read_ground_truth(sql, [7])[7] == [invoice(0, None, item, item)]


def test_the_ledger_keeps_warnings_as_json(sql):
    warnings = [{"code": "line_total_mismatch", "invoice_index": 0, "line_no": 2, "message": "x"}]
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, warnings)"
        " VALUES (1, 'ocr-table-v1', 'done', CAST(:w AS jsonb))",
        w=json.dumps(warnings),
    )
    assert sql.run("SELECT warnings -> 0 ->> 'code' FROM benchmarking.extraction_jobs") == [["line_total_mismatch"]]
