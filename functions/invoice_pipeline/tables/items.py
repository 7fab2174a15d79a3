"""Writing an order's items: every line of every invoice, and the ledger row set to `done`, in ONE statement.

One statement is one transaction and one round trip, whatever the size of the order: the items go in as
one array per column (``unnest``), so the parameter count is constant (no 65,535-parameter limit to chunk
around). The ledger update is a data-modifying CTE the insert depends on: when the claim was lost
(``attempts`` moved on) nothing at all is written. ``ON CONFLICT DO NOTHING`` is the last line of defence
against a second write of the same order. The same statement stores the order's validation warnings (the
normaliser's and the arithmetic checks', a JSON array, ``[]`` when there are none) in the ledger row, and each
line's evidence: where it was read (``page``, ``bbox``, ``source_text``), its ``checks`` and ``trust``, with the
per-invoice evidence in ``extraction_jobs.evidence`` (:mod:`invoice_pipeline.tables.evidence`). The agreement check
compares with the lines other models already stored for the order (one read before the write), and updates
their checks and trust in the same statement (the agreement check both ways). It also
writes the job's completion event to the outbox (:mod:`invoice_pipeline.tables.events`): the event exists exactly when
the transition committed.

A job done before and sent again on purpose (``invoices enqueue --again``) keeps its old lines until this
statement replaces them: the lines of ``(order_id, llm)`` are deleted by the same statement that inserts the new
ones, so a reader sees the old set or the new one, never none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.reading.validation import validate_order, warnings_json
from invoice_pipeline.tables.db import Connection
from invoice_pipeline.tables.events import JOB_EVENT_COLUMNS, outbox_insert
from invoice_pipeline.tables.item_columns import ITEM_COLUMNS, item_columns, item_from_columns

if TYPE_CHECKING:  # the evidence checks load with the first write, not at the handler's cold start
    from invoice_pipeline.tables import evidence

WRITE_ORDER = f"""
WITH job AS (
    UPDATE benchmarking.extraction_jobs
    SET status = 'done', finished_at = now(), last_error = NULL, failed_message_id = NULL, kept_answers = NULL,
        invoice_count = :invoice_count, item_count = :item_count, input_tokens = :input_tokens,
        output_tokens = :output_tokens, cost_usd = CAST(:cost_usd AS numeric), warnings = CAST(:warnings AS jsonb),
        model_ms = CAST(:model_ms AS bigint), evidence = CAST(:evidence AS jsonb), stage_answers = NULL,
        updated_at = now()
    WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
    RETURNING {JOB_EVENT_COLUMNS}
), replaced AS (
    -- The lines of an earlier run of this job (a redo); none otherwise. The insert below reads this CTE, so the
    -- delete runs first and its rows no longer conflict with the new ones.
    DELETE FROM benchmarking.invoice_items AS old
    USING job WHERE old.order_id = job.order_id AND old.llm = job.llm
    RETURNING 1
), event AS (
    {outbox_insert("job")}
), written AS (
    INSERT INTO benchmarking.invoice_items
        (order_id, llm, invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency,
         page, bbox, source_text, checks, trust, stage)
    SELECT job.order_id, job.llm, item.invoice_index, item.line_no, item.item_name, item.qty, item.uom,
        item.unit_price, item.net_price, item.currency, item.page, CAST(item.bbox AS jsonb), item.source_text,
        CAST(item.checks AS jsonb), item.trust, item.stage
    FROM job CROSS JOIN (SELECT count(*) FROM replaced) AS deleted CROSS JOIN unnest(
        CAST(:invoice_index AS integer[]), CAST(:line_no AS integer[]), CAST(:item_name AS text[]),
        CAST(:qty AS numeric[]), CAST(:uom AS text[]), CAST(:unit_price AS numeric[]),
        CAST(:net_price AS numeric[]), CAST(:currency AS text[]), CAST(:page AS integer[]),
        CAST(:bbox AS text[]), CAST(:source_text AS text[]), CAST(:checks AS text[]), CAST(:trust AS text[]),
        CAST(:stage AS text[])
    ) AS item (invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency, page, bbox,
               source_text, checks, trust, stage)
    ON CONFLICT (order_id, llm, invoice_index, line_no) DO NOTHING
    RETURNING 1
), agreed AS (
    UPDATE benchmarking.invoice_items AS item
    SET checks = CAST(other.checks AS jsonb), trust = other.trust, updated_at = now()
    FROM job, unnest(
        CAST(:other_llm AS text[]), CAST(:other_invoice_index AS integer[]), CAST(:other_line_no AS integer[]),
        CAST(:other_checks AS text[]), CAST(:other_trust AS text[])
    ) AS other (llm, invoice_index, line_no, checks, trust)
    WHERE item.order_id = job.order_id AND item.llm = other.llm AND item.invoice_index = other.invoice_index
        AND item.line_no = other.line_no
    RETURNING 1
)
SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM written), (SELECT id FROM event)
"""


def order_cost(invoices: Sequence[ExtractedInvoice]) -> str | None:
    """The order's cost in USD as text for ``numeric``; None ("unknown") when any invoice's cost is unknown."""
    costs = [invoice.cost_usd for invoice in invoices]
    if any(cost is None for cost in costs):
        return None
    return str(sum((cost for cost in costs if cost is not None), Decimal(0)))


EVIDENCE_COLUMNS = ("page", "bbox", "source_text", "checks", "trust")
OTHER_MODELS_LINES = """
SELECT llm, invoice_index, line_no, checks, item_name, qty, uom, unit_price, net_price
FROM benchmarking.invoice_items
WHERE order_id = :order_id AND llm <> :llm
ORDER BY llm, invoice_index, line_no
"""


def other_models_lines(connection: Connection, order_id: int, llm: str) -> list[evidence.StoredOtherLine]:
    """The lines the other models stored for this order, with their checks (the agreement check, both ways)."""
    from invoice_pipeline.tables import evidence

    found = []
    for other, invoice_index, line_no, checks, *values in connection.run(
        OTHER_MODELS_LINES, order_id=order_id, llm=llm
    ):
        checks = checks if isinstance(checks, dict) else {}
        passed, failed = tuple(checks.get("passed") or ()), tuple(checks.get("failed") or ())
        found.append(evidence.StoredOtherLine(other, invoice_index, line_no, item_from_columns(values), passed, failed))
    return found


def _by_invoice(others: Sequence[evidence.StoredOtherLine]) -> dict[int, list[list[ExtractedItem]]]:
    """invoice_index -> each other model's lines (one list per model)."""
    found: dict[int, dict[str, list[ExtractedItem]]] = {}
    for line in others:
        found.setdefault(line.invoice_index, {}).setdefault(line.llm, []).append(line.item)
    return {index: list(models.values()) for index, models in found.items()}


@dataclass(frozen=True)
class OrderWrite:
    job_completed: bool  # False: the claim was lost, nothing was written
    items_written: int
    item_count: int
    outbox_id: int | None = None  # the completion event to publish now that the write committed


def write_order(
    connection: Connection,
    order_id: int,
    llm: str,
    *,
    attempt: int,
    invoices: Sequence[ExtractedInvoice],
    model_ms: int | None = None,
    stages: Sequence[str | None] | None = None,
) -> OrderWrite:
    """``model_ms``: the time spent in the model for the whole order (the workbench's latency percentiles).
    ``stages``: per invoice, the cascade stage whose answer it is (None, or no list, for a single model)."""
    from invoice_pipeline.tables import evidence

    names = ("invoice_index", "line_no", *ITEM_COLUMNS, "currency", *EVIDENCE_COLUMNS, "stage")
    invoice_stages = list(stages) if stages is not None else [None] * len(invoices)
    columns: dict[str, list[object]] = {name: [] for name in names}
    others = other_models_lines(connection, order_id, llm)
    lines, wholes = evidence.order_evidence(invoices, _by_invoice(others))
    updates = evidence.agreement_updates(invoices, others)
    for invoice, invoice_lines, stage in zip(invoices, lines, invoice_stages, strict=True):
        for line_no, (item, found) in enumerate(zip(invoice.items, invoice_lines, strict=True), start=1):
            columns["invoice_index"].append(invoice.invoice_index)
            columns["line_no"].append(line_no)
            for column, value in item_columns(item).items():
                columns[column].append(value)
            columns["currency"].append(invoice.currency)
            columns["page"].append(item.page)
            columns["bbox"].append(None if item.bbox is None else json.dumps(list(item.bbox)))
            columns["source_text"].append(item.source_text)
            columns["checks"].append(found.checks_json())
            columns["trust"].append(found.trust)
            columns["stage"].append(stage)
    item_count = len(columns["line_no"])
    rows = connection.run(
        WRITE_ORDER,
        order_id=order_id,
        llm=llm,
        attempt=attempt,
        invoice_count=len(invoices),
        item_count=item_count,
        input_tokens=sum(invoice.input_tokens for invoice in invoices),
        output_tokens=sum(invoice.output_tokens for invoice in invoices),
        cost_usd=order_cost(invoices),
        warnings=warnings_json(validate_order(invoices)),
        model_ms=model_ms,
        evidence=evidence.evidence_json(wholes),
        other_llm=[other.llm for other, _ in updates],
        other_invoice_index=[other.invoice_index for other, _ in updates],
        other_line_no=[other.line_no for other, _ in updates],
        other_checks=[found.checks_json() for _, found in updates],
        other_trust=[found.trust for _, found in updates],
        **columns,
    )
    completed, written, outbox_id = rows[0]
    return OrderWrite(
        job_completed=bool(completed), items_written=int(written), item_count=item_count, outbox_id=outbox_id
    )


SELECT_ITEMS = """
SELECT order_id, llm, invoice_index, item_name, qty, uom, unit_price, net_price, currency
FROM benchmarking.invoice_items
WHERE order_id = ANY(CAST(:order_ids AS bigint[])) AND llm = ANY(CAST(:llms AS text[]))
ORDER BY order_id, llm, invoice_index, line_no
"""
ITEMS_PER_INVOICE = """
SELECT order_id, llm, invoice_index, count(*)
FROM benchmarking.invoice_items
WHERE llm = ANY(CAST(:llms AS text[]))
GROUP BY order_id, llm, invoice_index
"""


def read_items(
    connection: Connection, order_ids: Sequence[int], llms: Sequence[str]
) -> dict[tuple[int, str], list[ExtractedInvoice]]:
    """The stored lines of the given orders and models: (order_id, llm) -> its invoices with lines, in order."""
    grouped: dict[tuple[int, str], dict[int, list[ExtractedItem]]] = {}
    currencies: dict[tuple[int, str, int], str | None] = {}
    rows = connection.run(SELECT_ITEMS, order_ids=list(order_ids), llms=list(llms))
    for order_id, llm, invoice_index, *values, currency in rows:
        grouped.setdefault((order_id, llm), {}).setdefault(invoice_index, []).append(item_from_columns(values))
        currencies[(order_id, llm, invoice_index)] = currency
    return {
        key: [
            ExtractedInvoice(index, currencies[(*key, index)], None, tuple(lines))
            for index, lines in sorted(invoices.items())
        ]
        for key, invoices in grouped.items()
    }


def items_per_invoice(connection: Connection, llms: Sequence[str]) -> dict[tuple[int, str, int], int]:
    """(order_id, llm, invoice_index) -> number of lines, for every invoice with lines of the given models."""
    rows = connection.run(ITEMS_PER_INVOICE, llms=list(llms))
    return {(order_id, llm, invoice_index): int(count) for order_id, llm, invoice_index, count in rows}


STAGE_INVOICES = """
SELECT llm, stage, count(DISTINCT (order_id, invoice_index))
FROM benchmarking.invoice_items
WHERE stage IS NOT NULL AND llm = ANY(CAST(:llms AS text[]))
  AND (CAST(:order_ids AS bigint[]) IS NULL OR order_id = ANY(CAST(:order_ids AS bigint[])))
GROUP BY llm, stage
"""


def stage_invoices(
    connection: Connection, llms: Sequence[str], order_ids: Sequence[int] | None = None
) -> dict[str, dict[str, int]]:
    """Cascade -> stage -> the invoices (with lines) that the stage answered, of the given orders (None: all)."""
    found: dict[str, dict[str, int]] = {}
    ids = None if order_ids is None else list(order_ids)
    for llm, stage, count in connection.run(STAGE_INVOICES, llms=list(llms), order_ids=ids):
        found.setdefault(llm, {})[stage] = int(count)
    return found
