"""Models compared on the same orders: the numbers of ``invoices report`` and of the workbench, from ONE function.

:func:`compare_models` gives one row per model (orders done / failed / pending, tokens, cost per invoice and per
order ("unknown" for a model without a price), model tries, throttles and budget waits, model latency p50 / p90,
share of orders with validation warnings, top failure reasons, item accuracy and per-field accuracy against
``benchmarking.ground_truth_items``, agreement with every other model, items per invoice). ``report --format json``
prints these rows; the comparison page and ``report --html`` draw them.

Accuracy reuses :mod:`invoices_cli.accuracy` (``compare_order`` per order, micro-averaged). Agreement between
two models is the item F1 of one model's lines against the other's (F1 is symmetric), over the orders that every
compared model finished; to keep the page fast it uses the newest ``AGREEMENT_MAX_ORDERS`` of them (the row says
how many). The review queue ranks orders worst first: incomplete invoices (their lines do not add up to the
printed total, or rows that look like items were not read), then doubtful lines, then validation warnings, then
disagreement, then no truth yet.

Line evidence (:mod:`invoice_pipeline.tables.evidence`): per model, the share of lines per trust level, and where ground
truth exists how often each level is fully right (``trust_reliability``); the headline ``lines_fully_right``
counts a truth line right only when it was read with its quantity, unit price and line total right, beside the
matching F1; ``invoice_evidence`` counts the invoices whose own checks passed and lists the others.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pg8000.native import Connection

from invoice_pipeline.extractor import ExtractedInvoice
from invoice_pipeline.tables import evidence, items, ledger_reads, orders
from invoice_pipeline.tables.ledger_reads import JobRow
from invoices_cli import accuracy, ground_truth
from invoices_cli.cascades import add_stage_shares

TOP_FAILURE_REASONS = 3
UNKNOWN = "unknown"  # the cost of a model without a price (pricing.py), in place of a number
INCOMPLETE_INVOICES_LISTED = 20
AGREEMENT_MAX_ORDERS = 300
REVIEW_QUEUE_MAX_ORDERS = 300
# Remembered order comparisons (about 3 per order and model pair on a page): enough for the pages' samples.
COMPARE_CACHE_SIZE = 8192
# Items per invoice, as histogram bins: (label, lowest, highest) inclusive; None is open-ended.
ITEM_BINS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0),
    ("1-4", 1, 4),
    ("5-9", 5, 9),
    ("10-14", 10, 14),
    ("15-19", 15, 19),
    ("20-29", 20, 29),
    ("30-49", 30, 49),
    ("50+", 50, None),
)


@dataclass(frozen=True)
class ComparisonFilter:
    """Which orders and models to compare; ``until`` is inclusive (orders created on that day count)."""

    restaurant_ids: tuple[int, ...] | None = None
    since: date | None = None
    until: date | None = None
    llms: tuple[str, ...] | None = None

    @property
    def reads_orders(self) -> bool:
        return self.restaurant_ids is not None or self.since is not None or self.until is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "restaurant_ids": None if self.restaurant_ids is None else list(self.restaurant_ids),
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "llms": None if self.llms is None else list(self.llms),
        }


@dataclass
class ComparisonData:
    """Everything the comparison and the review queue are computed from, read once."""

    jobs: list[JobRow]
    truth: dict[int, list[ExtractedInvoice]]
    lines: dict[tuple[int, str], list[ExtractedInvoice]]
    invoice_items: dict[tuple[int, str, int], int]
    agreement_orders: list[int]
    queue_orders: list[int]
    llms: list[str] = field(default_factory=list)
    done_by_order: dict[int, set[str]] = field(default_factory=dict)
    trust: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)  # lines per trust level
    line_trust: dict[tuple[int, str, int], list[evidence.StoredLine]] = field(default_factory=dict)  # truth orders
    invoice_evidence: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)

    def done_models(self, order_id: int) -> list[str]:
        return sorted(self.done_by_order.get(order_id, ()))


def load_comparison_data(connection: Connection, scope: ComparisonFilter) -> ComparisonData:
    jobs = ledger_reads.job_rows(
        connection,
        llms=scope.llms,
        restaurant_ids=scope.restaurant_ids,
        since=scope.since,
        before=None if scope.until is None else scope.until + timedelta(days=1),
        reads_orders=scope.reads_orders,
    )
    llms = sorted({job.llm for job in jobs})
    done_by_order: dict[int, set[str]] = defaultdict(set)
    for job in jobs:
        if job.status == "done":
            done_by_order[job.order_id].add(job.llm)
    newest_first = sorted(done_by_order, reverse=True)
    agreement_orders = [o for o in newest_first if len(llms) > 1 and done_by_order[o] == set(llms)]
    agreement_orders = agreement_orders[:AGREEMENT_MAX_ORDERS]
    queue_orders = newest_first[:REVIEW_QUEUE_MAX_ORDERS]
    truth = ground_truth.read_ground_truth(connection, list(done_by_order))
    wanted = sorted({*truth, *agreement_orders, *queue_orders})
    lines = items.read_items(connection, wanted, llms) if wanted and llms else {}
    in_scope = {(job.order_id, job.llm) for job in jobs if job.status == "done"}
    invoice_items = {
        key: count for key, count in items.items_per_invoice(connection, llms).items() if key[:2] in in_scope
    }
    trust = {key: counts for key, counts in evidence.trust_counts(connection, llms).items() if key in in_scope}
    line_trust = evidence.stored_lines(connection, sorted(truth), llms)
    invoice_evidence = {
        key: found for key, found in ledger_reads.invoice_evidence(connection, llms).items() if key in in_scope
    }
    return ComparisonData(
        jobs,
        truth,
        lines,
        invoice_items,
        agreement_orders,
        queue_orders,
        llms,
        dict(done_by_order),
        trust,
        line_trust,
        invoice_evidence,
    )


def trust_shares(data: ComparisonData, llm: str) -> dict[str, Any]:
    """The model's lines and the share of them per trust level (``unknown``: written before trust existed)."""
    counts: Counter[str] = Counter()
    for (_, other), found in data.trust.items():
        if other == llm:
            counts.update(found)
    lines = sum(counts.values())
    return {"lines": lines, **{level: _ratio(counts[level], lines) for level in (*evidence.TRUST_LEVELS, "unknown")}}


def trust_reliability(data: ComparisonData, llm: str) -> dict[str, dict[str, Any]]:
    """Per trust level, over the orders with ground truth: lines, lines fully right, and the share right."""
    counts: Counter[tuple[str, bool]] = Counter()
    for order_id, truth in data.truth.items():
        if llm not in data.done_by_order.get(order_id, ()):
            continue
        expected = {invoice.invoice_index: invoice.items for invoice in truth}
        for invoice in data.lines.get((order_id, llm), []):
            stored = data.line_trust.get((order_id, llm, invoice.invoice_index), [])
            verdicts = accuracy.line_verdicts(expected.get(invoice.invoice_index, ()), invoice.items)
            for line, right in zip(stored, verdicts, strict=False):
                counts[(line.trust or "unknown", right)] += 1
    table = {}
    for level in (*evidence.TRUST_LEVELS, "unknown"):
        lines = counts[(level, True)] + counts[(level, False)]
        table[level] = {
            "lines": lines,
            "right": counts[(level, True)],
            "share_right": _ratio(counts[(level, True)], lines),
        }
    return table


def invoice_evidence_summary(data: ComparisonData, llm: str) -> dict[str, Any]:
    """How many of the model's invoices passed their own checks, which checks failed, and the first incomplete."""
    invoices = complete = 0
    failed: Counter[str] = Counter()
    incomplete: list[dict[str, Any]] = []
    for (order_id, other), found in sorted(data.invoice_evidence.items(), reverse=True):
        if other != llm:
            continue
        for invoice in found:
            invoices += 1
            if not invoice.get("failed"):
                complete += 1
                continue
            failed.update(invoice["failed"])
            if len(incomplete) < INCOMPLETE_INVOICES_LISTED:
                incomplete.append({"order_id": order_id, **invoice})
    return {"invoices": invoices, "complete": complete, "checks_failed": dict(failed), "incomplete": incomplete}


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default), ``q`` in [0, 1]."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.000001")))


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@functools.lru_cache(maxsize=COMPARE_CACHE_SIZE)
def compare_lines(expected: tuple[ExtractedInvoice, ...], actual: tuple[ExtractedInvoice, ...]) -> accuracy.ItemScores:
    """:func:`invoices_cli.accuracy.compare_order`, remembered: stored lines never change, and the matcher
    (difflib on every pair of descriptions) is what the pages spend their time on."""
    return accuracy.compare_order(expected, actual)


def order_scores(data: ComparisonData, llm: str, order_id: int) -> accuracy.ItemScores | None:
    """One model's lines of one order against its ground truth; None without truth or without a done job."""
    if order_id not in data.truth or llm not in data.done_by_order.get(order_id, ()):
        return None
    return compare_lines(tuple(data.truth[order_id]), tuple(data.lines.get((order_id, llm), [])))


def agreement(data: ComparisonData, first: str, second: str, orders: Iterable[int]) -> accuracy.ItemScores:
    """Item F1 of ``second``'s lines against ``first``'s, summed over ``orders``."""
    return accuracy.aggregate(
        compare_lines(tuple(data.lines.get((order_id, first), [])), tuple(data.lines.get((order_id, second), [])))
        for order_id in orders
    )


def _bin(count: int) -> str:
    for label, low, high in ITEM_BINS:
        if count >= low and (high is None or count <= high):
            return label
    return ITEM_BINS[-1][0]


def model_rows(data: ComparisonData) -> list[dict[str, Any]]:
    """One row per model: the numbers ``report --format json`` prints and the comparison page shows."""
    matrix: dict[tuple[str, str], float | None] = {}
    for first, second in itertools.combinations(data.llms, 2):
        pair = agreement(data, first, second, data.agreement_orders)
        f1 = round(pair.f1, 4) if data.agreement_orders else None
        matrix[(first, second)] = matrix[(second, first)] = f1
    items_by_model: Counter[str] = Counter()
    for (_, llm, _), count in data.invoice_items.items():
        items_by_model[llm] += count
    rows = []
    for llm in data.llms:
        jobs = [job for job in data.jobs if job.llm == llm]
        done = [job for job in jobs if job.status == "done"]
        invoices = sum(job.invoice_count or 0 for job in done)
        cost = sum((job.cost_usd or Decimal(0) for job in jobs), Decimal(0))
        # A done job without a cost ran on a model with no price: the model's cost is unknown, never 0.
        cost_unknown = sum(1 for job in done if job.cost_usd is None)
        latencies = [float(job.model_ms) for job in done if job.model_ms is not None]
        validated = [job for job in done if job.warning_count is not None]
        reasons = Counter(job.last_error or "(no reason recorded)" for job in jobs if job.status == "failed")
        scores = [s for s in (order_scores(data, llm, job.order_id) for job in done) if s is not None]
        total = accuracy.aggregate(scores) if scores else None
        histogram = dict.fromkeys((label for label, _, _ in ITEM_BINS), 0)
        for job in done:
            for index in range(job.invoice_count or 0):
                histogram[_bin(data.invoice_items.get((job.order_id, llm, index), 0))] += 1
        p50, p90 = _percentile(latencies, 0.5), _percentile(latencies, 0.9)
        rows.append(
            {
                "llm": llm,
                "orders_done": len(done),
                "orders_failed": sum(job.status == "failed" for job in jobs),
                "orders_pending": sum(job.status in ("queued", "processing") for job in jobs),
                "invoices": invoices,
                "items": items_by_model[llm],
                "input_tokens": sum(job.input_tokens or 0 for job in jobs),
                "output_tokens": sum(job.output_tokens or 0 for job in jobs),
                "cost_usd": UNKNOWN if cost_unknown else str(cost),
                "cost_per_invoice_usd": UNKNOWN if cost_unknown else _money(cost / invoices) if invoices else None,
                "cost_per_order_usd": UNKNOWN if cost_unknown else _money(cost / len(done)) if done else None,
                "orders_cost_unknown": cost_unknown,
                "attempts": sum(job.attempts for job in jobs),
                "throttles": sum(job.throttles for job in jobs),
                "budget_waits": sum(job.budget_waits for job in jobs),
                "model_ms_p50": None if p50 is None else round(p50),
                "model_ms_p90": None if p90 is None else round(p90),
                "orders_validated": len(validated),
                "orders_with_warnings": sum(1 for job in validated if job.warning_count),
                "warnings_share": _ratio(sum(1 for job in validated if job.warning_count), len(validated)),
                "accuracy_orders": len(scores),
                "accuracy_f1": None if total is None else round(total.f1, 4),
                "accuracy_precision": None if total is None else round(total.precision, 4),
                "accuracy_recall": None if total is None else round(total.recall, 4),
                "lines_fully_right": None if total is None else round(total.lines_fully_right, 4),
                "trust": trust_shares(data, llm),
                "trust_reliability": trust_reliability(data, llm) if scores else None,
                "invoice_evidence": invoice_evidence_summary(data, llm),
                "field_accuracy": None
                if total is None
                else {name: round(value, 4) for name, value in total.field_accuracy.items()},
                "agreement_orders": len(data.agreement_orders),
                "agreement_f1": {other: matrix[(llm, other)] for other in data.llms if other != llm},
                "items_per_invoice": histogram,
                "top_failure_reasons": [
                    {"reason": reason, "jobs": count}
                    for reason, count in sorted(reasons.items(), key=lambda entry: (-entry[1], entry[0]))[
                        :TOP_FAILURE_REASONS
                    ]
                ],
                "more_failure_reasons": {
                    "reasons": max(0, len(reasons) - TOP_FAILURE_REASONS),
                    "jobs": sum(sorted(reasons.values(), reverse=True)[TOP_FAILURE_REASONS:]),
                },
            }
        )
    return rows


def compare_models(connection: Connection, scope: ComparisonFilter) -> list[dict[str, Any]]:
    """The per-model rows for ``scope`` (the single source of the report and the comparison page); a cascade's row also
    says which stage answered how many invoices, and the cost it saved (:mod:`invoices_cli.cascades`)."""
    data = load_comparison_data(connection, scope)
    rows = model_rows(data)
    add_stage_shares(rows, items.stage_invoices(connection, data.llms, sorted({job.order_id for job in data.jobs})))
    return rows


def restaurants(connection: Connection) -> list[int]:
    """Restaurant ids for the filter (none when the ordering app's table is absent)."""
    return orders.restaurants(connection)


@dataclass(frozen=True)
class QueueEntry:
    order_id: int
    models: tuple[str, ...]
    warnings: int
    disagreement: float | None  # 1 - the lowest pairwise F1 between the models that finished it
    has_truth: bool
    doubtful: int = 0  # doubtful lines, over the models that finished it
    incomplete: int = 0  # invoices whose own checks failed, over the models

    @property
    def sort_key(self) -> tuple[int, int, int, float, bool, int]:
        return (
            -self.incomplete,
            -self.doubtful,
            -self.warnings,
            -(self.disagreement or 0.0),
            self.has_truth,
            -self.order_id,
        )


def review_queue(data: ComparisonData) -> list[QueueEntry]:
    """Orders to review, worst first: incomplete invoices, doubtful lines, validation warnings, disagreement, then
    no ground truth."""
    warnings: Counter[int] = Counter()
    for job in data.jobs:
        if job.status == "done" and job.warning_count:
            warnings[job.order_id] += job.warning_count
    doubtful: Counter[int] = Counter()
    for (order_id, _), counts in data.trust.items():
        doubtful[order_id] += counts.get("doubtful", 0)
    incomplete: Counter[int] = Counter()
    for (order_id, _), found in data.invoice_evidence.items():
        incomplete[order_id] += sum(1 for invoice in found if invoice.get("failed"))
    entries = []
    for order_id in data.queue_orders:
        models = data.done_models(order_id)
        pairs = list(itertools.combinations(models, 2))
        disagreement = (
            round(1 - min(agreement(data, first, second, [order_id]).f1 for first, second in pairs), 4)
            if pairs
            else None
        )
        entries.append(
            QueueEntry(
                order_id,
                tuple(models),
                warnings[order_id],
                disagreement,
                order_id in data.truth,
                doubtful[order_id],
                incomplete[order_id],
            )
        )
    return sorted(entries, key=lambda entry: entry.sort_key)


def rows_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
