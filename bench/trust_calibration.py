"""Trust calibration on labelled documents: how often a line of each trust level is fully right.

A predicted line is fully right when the set's scorer pairs it with a labelled line (``score.match_lines``) and
its quantity, unit price and line total equal the label's (``score.num_eq``, fields the label leaves empty are
not compared). Labelled lines no prediction was paired with are "missed": they have no trust level, but they
count in the coverage (``verified`` lines fully right, over all labelled lines).

Used by ``bench/real_documents.py`` (one table per set and pass); the trust levels come from the pipeline's own
checks (:mod:`invoice_pipeline.tables.evidence`), exactly as the consumer stores them. ``score`` is the set's own
``score.py`` module (``FIELDS``, ``match_lines``, ``num_eq``), loaded at run time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from invoice_pipeline.extractor import ExtractedInvoice
from invoice_pipeline.providers.normalise import normalise_provenance
from invoice_pipeline.tables.evidence import TRUST_LEVELS, line_evidence

VERIFIED_PRECISION_TARGET = 0.99
VERIFIED_COVERAGE_TARGET = 0.75


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@dataclass
class Calibration:
    """Counts of (trust level, right or wrong) over the lines of one set and pass."""

    counts: Counter[tuple[str, bool]] = field(default_factory=Counter)
    labelled: int = 0
    missed: int = 0
    failed_checks: Counter[str] = field(default_factory=Counter)  # on wrong lines: which checks caught them
    wrong_lines: list[str] = field(default_factory=list)  # verified but wrong: what to look at

    def add(self, score: Any, truth: dict[str, Any], invoice: ExtractedInvoice, document: str = "") -> None:
        invoice = normalise_provenance(invoice, pages=max((item.page or 1 for item in invoice.items), default=1))
        expected = truth["items"]
        predicted = [
            {
                "description": item.description,
                "quantity": _plain(item.quantity),
                "unit": item.unit,
                "unit_price": _plain(item.unit_price),
                "line_total": _plain(item.line_total),
            }
            for item in invoice.items
        ]
        pairs = score.match_lines(expected, predicted)
        paired = dict((j, i) for i, j in pairs)
        self.labelled += len(expected)
        self.missed += len(expected) - len(pairs)
        for j, found in enumerate(line_evidence(invoice)):
            i = paired.get(j)
            right = i is not None and all(
                score.num_eq(expected[i][name], predicted[j][name])
                for name in score.FIELDS
                if expected[i].get(name) is not None
            )
            self.counts[(found.trust, right)] += 1
            if not right:
                self.failed_checks.update(found.failed)
                if found.trust == "verified":
                    self.wrong_lines.append(
                        f"{document} line {j + 1}: {predicted[j]} vs {expected[i] if i is not None else 'no label'}"
                    )

    def right(self, level: str) -> int:
        return self.counts[(level, True)]

    def total(self, level: str) -> int:
        return self.counts[(level, True)] + self.counts[(level, False)]

    @property
    def wrong(self) -> int:
        return sum(count for (_, right), count in self.counts.items() if not right)

    def verified_precision(self) -> float | None:
        total = self.total("verified")
        return self.right("verified") / total if total else None

    def verified_coverage(self) -> float | None:
        return self.right("verified") / self.labelled if self.labelled else None

    def doubtful_share_of_wrong(self) -> float | None:
        return self.counts[("doubtful", False)] / self.wrong if self.wrong else None

    def table(self, label: str) -> list[str]:
        """The calibration table: per level, lines, fully right, wrong, share right; then the targets."""
        lines = [f"  {label}: {self.labelled} labelled lines, {self.missed} missed (no line read for them)"]
        lines.append(f"    {'trust':<10}{'lines':>7}{'right':>7}{'wrong':>7}{'share right':>13}")
        for level in TRUST_LEVELS:
            total = self.total(level)
            share = f"{self.right(level) / total:.3f}" if total else "-"
            lines.append(f"    {level:<10}{total:>7}{self.right(level):>7}{total - self.right(level):>7}{share:>13}")
        precision, coverage, doubtful = (
            self.verified_precision(),
            self.verified_coverage(),
            self.doubtful_share_of_wrong(),
        )
        lines.append(
            f"    verified fully right {_rate(precision)} (target >= {VERIFIED_PRECISION_TARGET:.2f}), "
            f"verified covers {_rate(coverage)} of labelled lines (target >= {VERIFIED_COVERAGE_TARGET:.2f}); "
            f"doubtful holds {_rate(doubtful)} of the {self.wrong} wrong lines"
        )
        if self.failed_checks:
            caught = ", ".join(f"{name} {count}" for name, count in self.failed_checks.most_common())
            lines.append(f"    checks failed on wrong lines: {caught}")
        lines.extend(f"    verified but wrong: {line}" for line in self.wrong_lines)
        return lines


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class Calibrations:
    """One :class:`Calibration` per (set, pass), in the order first seen; printed as one table each."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], Calibration] = {}

    def add(
        self,
        set_name: str,
        pass_name: str,
        score: Any,
        truth: dict[str, Any],
        invoice: ExtractedInvoice,
        document: str = "",
    ) -> None:
        if not truth.get("items"):  # receipts are labelled by item count and total only (items: null)
            return
        self.by_key.setdefault((set_name, pass_name), Calibration()).add(score, truth, invoice, document)

    def print(self) -> None:
        if not self.by_key:
            return
        print("\nTRUST CALIBRATION (trust level x fully right, per set and pass)")
        for (set_name, pass_name), calibration in self.by_key.items():
            for line in calibration.table(f"{set_name} {pass_name}"):
                print(line)
