"""Ground truth and validation warnings on a real server (migration 0003)."""

import json
from decimal import Decimal

import pytest

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.tables.migrations import available_migrations, migrate
from invoices_cli.ground_truth import ground_truth_versions, load_ground_truth, read_ground_truth
from invoices_cli.main import main
from local.samples import generate_orders, truth_to_json
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


def test_invoices_ground_truth_load_replaces_the_orders_of_a_file_exactly_as_the_samples_write_them(
    sql, tmp_path, capsys
):
    orders = generate_orders(3, seed=4)
    truth = {order_id: [i.truth for i in order.invoices] for order_id, order in enumerate(orders, start=501)}
    load_ground_truth(sql, {501: [invoice(0, "USD", ExtractedItem("Old line", None, None, None, None))]})
    path = tmp_path / "truth.json"
    listed = [
        {"order_id": order_id, "invoices": [truth_to_json(i) for i in invoices]} for order_id, invoices in truth.items()
    ]
    path.write_text(json.dumps(listed), encoding="utf-8")

    assert main(["ground-truth", "load", str(path), "--saved-by", "ops", "--json"]) == 0

    lines = sum(len(i.items) for invoices in truth.values() for i in invoices)
    assert json.loads(capsys.readouterr().out) == {"orders": 3, "lines": lines}
    read = read_ground_truth(sql, list(truth))
    for order_id, invoices in truth.items():
        assert [(i.invoice_index, i.currency, i.items) for i in read[order_id]] == [
            (i.invoice_index, i.currency, i.items) for i in invoices
        ]
    assert [version.lines for version in ground_truth_versions(sql, 501)] == [1]  # the replaced truth is kept
    assert sql.run("SELECT DISTINCT saved_by FROM benchmarking.ground_truth_items") == [["ops"]]


def test_a_number_given_as_json_number_is_read_exactly(sql, tmp_path):
    path = tmp_path / "truth.json"
    path.write_text(
        '[{"order_id": 9, "invoices": [{"invoice_index": 0, "items": [{"description": "Rice", "quantity": 2.10,'
        ' "unit_price": 0.335, "line_total": "0.704"}]}]}]',
        encoding="utf-8",
    )
    assert main(["ground-truth", "load", str(path)]) == 0
    item = read_ground_truth(sql, [9])[9][0].items[0]
    assert (item.quantity, item.unit_price, item.line_total) == (Decimal("2.10"), Decimal("0.335"), Decimal("0.704"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "is not JSON"),
        ('{"order_id": 1}', "the top level: Input should be a valid list"),
        (
            '[{"order_id": 1, "invoices": [{"invoice_index": 0, "items": [{"quantity": "two"}]}]}]',
            "[0].invoices[0].items[0].quantity: Input should be a valid decimal",
        ),
        (
            '[{"order_id": 1, "invoices": [{"invoice_index": 0, "items": [{"qty": "2"}]}]}]',
            "[0].invoices[0].items[0].qty: Extra inputs are not permitted",
        ),
        ('[{"order_id": 0, "invoices": []}]', "[0].order_id: Input should be greater than or equal to 1"),
        ('[{"order_id": 1, "invoices": []}, {"order_id": 1, "invoices": []}]', "[1].order_id: order 1 is listed twice"),
        (
            '[{"order_id": 1, "invoices": [{"invoice_index": 0, "items": []}, {"invoice_index": 0, "items": []}]}]',
            "[0].invoices: an invoice_index is listed twice",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_the_entry_and_nothing_is_written(sql, tmp_path, capsys, content, message):
    load_ground_truth(sql, {1: [invoice(0, None, ExtractedItem("Kept", None, None, None, None))]})
    path = tmp_path / "truth.json"
    path.write_text(content, encoding="utf-8")

    assert main(["ground-truth", "load", str(path)]) == 2

    assert message in capsys.readouterr().err
    assert [i.items[0].description for i in read_ground_truth(sql, [1])[1]] == ["Kept"]
