"""With the index from `invoices index-orders`, every page reads orders through it: a range, no sort, no OFFSET.

A restaurant list is a filter checked on the index entries (restaurant_id is INCLUDEd), never a sort.
"""

from __future__ import annotations

from typing import Any

import pytest

from invoice_pipeline.tables.ledger import PAGE_AND_CLAIM_ALL_RESTAURANTS, PAGE_AND_CLAIM_LISTED_RESTAURANTS
from invoice_pipeline.tables.orders import ORDERS_INDEX_NAME, create_orders_index
from tests.integration.producer.conftest import MODELS, at


def plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [node]
    for child in node.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


@pytest.fixture
def indexed_orders(orders, sql):
    rows = [
        (order_id, order_id % 8, None if order_id % 3 == 0 else f"s3://invoices/{order_id}.jpg", at(order_id))
        for order_id in range(1, 30_001)
    ]
    orders(rows)
    assert create_orders_index(sql) == "created"
    sql.run("VACUUM ANALYZE orders")
    return sql


@pytest.mark.parametrize(
    ("statement", "extra"),
    [(PAGE_AND_CLAIM_ALL_RESTAURANTS, {}), (PAGE_AND_CLAIM_LISTED_RESTAURANTS, {"restaurant_ids": [1, 3, 6]})],
    ids=["every restaurant", "listed restaurants"],
)
def test_each_page_is_an_index_scan_of_the_orders_index(indexed_orders, statement, extra):
    params = {
        "after_created_at": at(5_000),
        "after_id": 5_000,
        "orders_since": at(100),
        "page_size": 500,
        "llms": list(MODELS),
        "lease_seconds": 3600,
        "processing_lease_seconds": 1800,
        "stale_processing_error": "re-enqueued",
        "max_claims": 1000,
        "priority_window_minutes": 60,
        **extra,
    }

    [[plan]] = indexed_orders.run(f"EXPLAIN (FORMAT JSON) {statement}", **params)

    reads = [node for node in plan_nodes(plan[0]["Plan"]) if node.get("Relation Name") == "orders"]
    assert reads, plan
    assert {node["Node Type"] for node in reads} <= {"Index Scan", "Index Only Scan"}, reads
    assert {node["Index Name"] for node in reads} == {ORDERS_INDEX_NAME}
    # The keyset position is an index condition (a range start), not a filter applied row by row.
    assert all("ROW(created_at, id) >" in node["Index Cond"] for node in reads)
    assert all("restaurant_id" not in node["Index Cond"] for node in reads)
    # The restaurants are a filter on the index entry: with the table all-visible, no heap visit at all.
    assert all("restaurant_id" in node["Filter"] for node in reads)
    assert {node["Node Type"] for node in reads} == {"Index Only Scan"}, reads
    # Rows come out of the index in page order: no sort above the read of orders.
    sorts = [node for node in plan_nodes(plan[0]["Plan"]) if node["Node Type"] in {"Sort", "Incremental Sort"}]
    assert not any(read in plan_nodes(sort) for sort in sorts for read in reads)
