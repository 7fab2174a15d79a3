"""The comparison numbers (one function for `invoices report` and the workbench) on two models and real rows."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pg8000.native
import pytest

from invoice_pipeline.tables import db, ledger
from invoices_cli.comparison import ComparisonFilter, compare_models, load_comparison_data, review_queue
from invoices_cli.main import main
from tests.workbench.conftest import MODEL_A, MODEL_B, TwoModels


def rows_by_model(scope: ComparisonFilter) -> dict[str, dict]:
    with db.pool.connection() as connection:
        return {row["llm"]: row for row in compare_models(connection, scope)}


def lines(data: TwoModels, orders: range | tuple[int, ...]) -> int:
    return sum(len(invoice.items) for order_id in orders for invoice in data.truth[order_id])


def test_per_model_figures_on_the_same_orders(two_models: TwoModels) -> None:
    rows = rows_by_model(ComparisonFilter())
    a, b = rows[MODEL_A], rows[MODEL_B]

    assert (a["orders_done"], a["orders_failed"], a["orders_pending"]) == (5, 0, 0)
    assert (b["orders_done"], b["orders_failed"], b["orders_pending"]) == (4, 1, 0)
    assert b["top_failure_reasons"] == [{"reason": "not an image", "jobs": 1}]
    invoices_a = sum(len(order.invoices) for order in two_models.samples)
    assert a["invoices"] == invoices_a and a["items"] == lines(two_models, range(1, 6))
    assert a["cost_per_invoice_usd"] == "0.010000" and a["input_tokens"] == 1000 * invoices_a
    assert a["cost_per_order_usd"] == f"{0.01 * invoices_a / 5:.6f}"
    # model time per order, linear interpolation between ranks
    assert (a["model_ms_p50"], a["model_ms_p90"]) == (1100, 1260)
    assert (b["model_ms_p50"], b["model_ms_p90"]) == (350, 470)
    assert (a["warnings_share"], b["warnings_share"], b["orders_with_warnings"]) == (0.0, 0.25, 1)

    # accuracy against ground truth on orders 1-3: A is exact, B has one wrong quantity and one missing line
    assert (a["accuracy_orders"], a["accuracy_f1"]) == (3, 1.0)
    tp = lines(two_models, (1, 2, 3)) - 1
    assert b["accuracy_orders"] == 3 and b["accuracy_f1"] == round(2 * tp / (2 * tp + 1), 4)
    assert b["field_accuracy"]["quantity"] == round((tp - 1) / tp, 4) and b["field_accuracy"]["description"] == 1.0

    # agreement on the orders both finished (1-4): B misses one of A's lines
    common = lines(two_models, (1, 2, 3, 4)) - 1
    assert a["agreement_orders"] == 4
    assert a["agreement_f1"] == {MODEL_B: round(2 * common / (2 * common + 1), 4)}
    assert b["agreement_f1"] == {MODEL_A: a["agreement_f1"][MODEL_B]}
    assert sum(a["items_per_invoice"].values()) == invoices_a


def test_filters_by_restaurant_date_and_model(two_models: TwoModels) -> None:
    by_restaurant = rows_by_model(ComparisonFilter(restaurant_ids=(101,)))  # orders 1, 2, 5
    assert by_restaurant[MODEL_A]["orders_done"] == 3
    assert (by_restaurant[MODEL_B]["orders_done"], by_restaurant[MODEL_B]["orders_failed"]) == (2, 1)

    by_date = rows_by_model(ComparisonFilter(since=date(2026, 11, 22), until=date(2026, 11, 23)))  # orders 2, 3
    assert by_date[MODEL_A]["orders_done"] == 2 and by_date[MODEL_A]["accuracy_orders"] == 2

    only_b = rows_by_model(ComparisonFilter(llms=(MODEL_B,)))
    assert list(only_b) == [MODEL_B] and only_b[MODEL_B]["agreement_f1"] == {}


def test_review_queue_puts_incomplete_invoices_then_doubtful_lines_first(two_models: TwoModels) -> None:
    with db.pool.connection() as connection:
        queue = review_queue(load_comparison_data(connection, ComparisonFilter()))
    order = [entry.order_id for entry in queue]
    assert order[0] == 3  # B missed a line: its lines no longer add up to the printed total
    assert (queue[0].incomplete, queue[0].doubtful) == (1, 1)  # and A's line that B lacks is in doubt
    assert order[1] == 2  # B's wrong quantity: doubtful, and A's line B disagrees with (the only warnings too)
    assert (queue[1].incomplete, queue[1].doubtful, queue[1].warnings) == (0, 2, 1)
    assert set(order) == {1, 2, 3, 4, 5}
    entry_5 = next(entry for entry in queue if entry.order_id == 5)
    assert entry_5.disagreement is None and not entry_5.has_truth


def test_report_json_and_html_come_from_the_same_numbers(
    two_models: TwoModels, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["report", "--format", "json", "--restaurant", "101"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with db.pool.connection() as connection:
        assert printed == compare_models(connection, ComparisonFilter(restaurant_ids=(101,)))

    target = tmp_path / "report.html"
    assert main(["report", "--html", str(target), "--restaurant", "101"]) == 0
    assert str(target.resolve()) in capsys.readouterr().out
    html = target.read_text(encoding="utf-8")
    # self-contained: no script, no stylesheet or image to fetch, no URL other than the SVG namespace
    assert "<script" not in html and '<link rel="stylesheet"' not in html
    assert re.findall(r"(?:src|href)=\"(?!data:)[^\"]+\"", html) == []
    assert set(re.findall(r"https?://[^\s'\"<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert html.count("class='point'") == 2 and "restaurants 101" in html
    b = next(row for row in printed if row["llm"] == MODEL_B)
    assert f">{b['accuracy_f1']:.3f}<" in html


def test_report_rejects_a_bad_date(two_models: TwoModels, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "yesterday"]) == 2
    assert "--since must be a date" in capsys.readouterr().err


def test_model_time_is_recorded_with_the_order(two_models: TwoModels, sql: pg8000.native.Connection) -> None:
    recorded = sql.run(
        "SELECT order_id, model_ms FROM benchmarking.extraction_jobs WHERE llm = :llm ORDER BY 1", llm=MODEL_A
    )
    assert recorded == [[1, 900], [2, 1100], [3, 1000], [4, 1300], [5, 1200]]


def test_trust_shares_reliability_and_lines_fully_right(
    two_models: TwoModels, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = rows_by_model(ComparisonFilter())
    a, b = rows[MODEL_A], rows[MODEL_B]
    # A reads every line exactly and every invoice adds up: verified and right, but for the two lines B disagrees
    # with (B wrote second: the agreement check runs both ways), which are doubtful (and right)
    in_doubt = round(2 / a["items"], 4)
    assert a["trust"] == {
        "lines": a["items"],
        "verified": round(1 - 2 / a["items"], 4),
        "plausible": 0.0,
        "doubtful": in_doubt,
        "unknown": 0.0,
    }
    truth_lines = lines(two_models, (1, 2, 3))
    assert a["lines_fully_right"] == 1.0
    assert a["trust_reliability"]["verified"] == {
        "lines": truth_lines - 2,
        "right": truth_lines - 2,
        "share_right": 1.0,
    }
    assert a["trust_reliability"]["doubtful"] == {"lines": 2, "right": 2, "share_right": 1.0}
    assert a["invoice_evidence"]["invoices"] == a["invoices"] == a["invoice_evidence"]["complete"]
    # B: order 2's first line is off (arithmetic, and A disagrees): doubtful and wrong; order 3 lost a line: its
    # invoice no longer adds up, so its other lines are only plausible (and right)
    kept_of_order_3 = len(two_models.truth[3][0].items) - 1
    assert b["trust_reliability"]["doubtful"] == {"lines": 1, "right": 0, "share_right": 0.0}
    assert b["trust_reliability"]["plausible"] == {
        "lines": kept_of_order_3,
        "right": kept_of_order_3,
        "share_right": 1.0,
    }
    assert b["trust_reliability"]["verified"]["share_right"] == 1.0
    assert b["lines_fully_right"] == round((truth_lines - 2) / truth_lines, 4)  # one wrong, one missed
    assert b["accuracy_f1"] > b["lines_fully_right"]
    assert b["invoice_evidence"]["checks_failed"] == {"invoice_total": 1}
    [incomplete] = b["invoice_evidence"]["incomplete"]
    assert (incomplete["order_id"], incomplete["invoice_index"], incomplete["failed"]) == (3, 0, ["invoice_total"])

    assert main(["report", "--llm", MODEL_B]) == 0
    text = capsys.readouterr().out
    assert f"lines fully right {b['lines_fully_right']:.3f}; matching F1 {b['accuracy_f1']:.3f}" in text
    assert f"trust ({b['trust']['lines']} lines): verified {b['trust']['verified']:.3f}" in text
    assert "fully right per trust level (ground truth): verified " in text and "doubtful 0/1" in text
    assert (
        f"invoices passing their own checks: {b['invoices'] - 1} of {b['invoices']} (failed: invoice_total 1)" in text
    )

    page = tmp_path / "report.html"
    assert main(["report", "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    row_b = html[html.index('<table id="trust">') :].split(f'<tr data-llm="{MODEL_B}">')[1].split("</tr>")[0]
    assert f">{b['lines_fully_right'] * 100:.1f}%<" in row_b
    assert 'data-field="reliability_doubtful">0.0% <span class="muted">(0/1)</span>' in row_b
    assert f'data-field="invoices_complete">{b["invoices"] - 1}/{b["invoices"]}<' in row_b


def test_failure_reasons_beyond_the_top_three_are_counted(two_models: TwoModels, tmp_path: Path) -> None:
    with db.pool.connection() as connection:
        for order_id, reason in ((11, "timeout"), (12, "refused"), (13, "refused"), (14, "too big"), (15, "odd")):
            claim = ledger.claim_job(connection, order_id, MODEL_B, message_id=f"m-{order_id}", lease_seconds=600)
            ledger.fail_job(connection, order_id, MODEL_B, attempt=claim.attempt, last_error=reason, message_id=None)
    b = rows_by_model(ComparisonFilter())[MODEL_B]
    # five reasons over six jobs: "refused" x2, then the rest by name; three shown, two more counted
    assert [entry["reason"] for entry in b["top_failure_reasons"]] == ["refused", "not an image", "odd"]
    assert b["more_failure_reasons"] == {"reasons": 2, "jobs": 2}
    page = tmp_path / "report.html"
    assert main(["report", "--html", str(page)]) == 0
    assert "and 2 more reason(s)" in page.read_text(encoding="utf-8")
