"""The chaos harness's invariants, checked on a ledger given by hand (the reliability suite runs them live)."""

from __future__ import annotations

import json

from local.chaos.data import MODEL, make_orders
from local.chaos.invariants import Ledger, check_invariants


def _rows(order):
    return [(t.invoice_index, t.line_no, t.item_name, t.qty, t.uom, t.unit_price, t.net_price) for t in order.truth]


def test_done_with_its_truth_and_failed_with_its_message_in_the_dlq_break_no_promise():
    done, failed = make_orders(2)
    ledger = Ledger(
        jobs={done.order_id: ("done", None, len(done.truth)), failed.order_id: ("failed", "refused", None)},
        rows={done.order_id: _rows(done)},
        duplicate_keys=0,
        tables=3,
    )
    dlq = [json.dumps({"order_id": failed.order_id, "llm": MODEL})]

    check = check_invariants(ledger, {o.order_id: o for o in (done, failed)}, dlq, unrecoverable={failed.order_id})

    assert (check.problems, check.done, check.failed, check.lost, check.dlq) == ([], 1, 1, 0, 1)


def test_a_failed_order_without_its_message_in_the_dlq_is_lost_and_a_short_item_count_is_half_written():
    done, failed = make_orders(2)
    ledger = Ledger(
        jobs={done.order_id: ("done", None, len(done.truth) + 1), failed.order_id: ("failed", "refused", None)},
        rows={done.order_id: _rows(done)},
        duplicate_keys=0,
        tables=3,
    )

    check = check_invariants(ledger, {o.order_id: o for o in (done, failed)}, dlq=[])

    assert (check.lost, check.half_written) == (1, 1)
    assert any("not in the DLQ" in problem for problem in check.problems)


def test_a_recoverable_order_still_failed_after_the_redrive_is_lost():
    (order,) = make_orders(1)
    ledger = Ledger(jobs={order.order_id: ("failed", "timeout", None)}, rows={}, duplicate_keys=0, tables=3)
    dlq = [json.dumps({"order_id": order.order_id})]

    first = check_invariants(ledger, {order.order_id: order}, dlq)
    final = check_invariants(ledger, {order.order_id: order}, dlq, final=True)

    assert (first.lost, final.lost) == (0, 1)
