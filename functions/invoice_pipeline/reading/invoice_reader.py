"""Words to line items: the two readers run on the same rows, and the reading whose arithmetic holds best wins.

``table_reader`` needs no header (it finds item rows by their arithmetic); ``header_reader`` reads the columns
under a header and the receipt line forms the sample generator prints. Their readings are ranked by
:func:`plausibility`. The rows come from :mod:`invoice_pipeline.reading.rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedInvoice
from invoice_pipeline.reading import header_reader, table_reader
from invoice_pipeline.reading.rows import Box, Row, chain_rows, group_rows


def reconstruct(rows: Sequence[Row], *, invoice_index: int = 0) -> ExtractedInvoice:
    """The invoice in ``rows`` (from ``group_rows`` or ``merge_segments``): items, printed total, currency."""
    return reconstruct_pages([rows], invoice_index=invoice_index)


def reconstruct_pages(pages: Sequence[Sequence[Row]], *, invoice_index: int = 0) -> ExtractedInvoice:
    """The invoice on ``pages`` (each page's rows): the reading whose arithmetic holds best.

    Two readers: the layout-free ``table_reader`` and the ``header_reader`` (tuned on the generated samples
    and the receipt line forms). Their readings are ranked by ``plausibility``; a tie keeps the header reader.
    """
    chained = [chain_rows([box for row in rows for box in row]) for rows in pages]
    general = table_reader.read_items(chained, invoice_index=invoice_index)
    stacked: list[Row] = []
    offset = 0.0
    for rows in pages:
        stacked.extend(tuple((b[0], b[1], b[2] + offset, b[3], b[4] + offset, b[5]) for b in row) for row in rows)
        offset += max((b[4] for row in rows for b in row), default=0.0) + 1.0
    by_header = header_reader.read_by_header(stacked, invoice_index=invoice_index)
    general_score, header_score = plausibility(general), plausibility(by_header)
    if general_score > header_score or (general_score == header_score and not by_header.items):
        return general
    return by_header


def plausibility(invoice: ExtractedInvoice) -> int:
    """How much of a reading its own arithmetic confirms: lines whose quantity x unit price is their total,
    plus two when the printed total is the sum of the lines."""
    confirmed = 0
    for item in invoice.items:
        if item.quantity is not None and item.unit_price is not None and item.line_total is not None:
            confirmed += abs(item.quantity * item.unit_price - item.line_total) <= Decimal("0.01")
    totals = [item.line_total for item in invoice.items if item.line_total is not None]
    printed = invoice.printed_total
    sums = bool(totals) and printed is not None and abs(sum(totals, Decimal(0)) - printed) <= Decimal("0.01")
    return confirmed + 2 * sums


def reconstruct_boxes(boxes: Iterable[Box], *, invoice_index: int = 0) -> ExtractedInvoice:
    """The invoice on one page of OCR boxes."""
    return reconstruct(group_rows(boxes), invoice_index=invoice_index)
