"""Item-level accuracy of an extraction against ground truth (or against another model's items).

Matching rule, applied to the items of one invoice (``compare``) or invoice by invoice (``compare_order``):

1. Descriptions are normalised: Unicode NFKC, Arabic-Indic digits to ASCII, casefold, punctuation to spaces,
   runs of whitespace to one space.
2. The similarity of two descriptions is the larger of ``difflib.SequenceMatcher.ratio()`` and the token
   overlap ``|A & B| / min(|A|, |B|)`` (counted only when both have at least two tokens, so "Beef" does not
   match "Beef mince", while a description cut after its first line still matches the whole one). Two empty
   descriptions have similarity 1 (the numbers decide), one empty description 0.
3. A truth item and a predicted item may be paired when their similarity is at least 0.8. Candidate pairs are
   ranked by similarity plus 0.05 for each number that agrees (quantity, unit price, line total, within
   0.5 %), so numbers decide between equal or near-equal descriptions
   (the same product on two lines). Pairs are taken greedily from the best down, each item at most once.
4. Paired items are true positives; unpaired predictions false positives; unpaired truth items false
   negatives. Precision, recall and F1 follow (F1 = 2 tp / (2 tp + fp + fn); 1.0 when both sides are empty).
5. Per-field accuracy over the pairs: ``description`` equal after normalisation; ``quantity``,
   ``unit_price`` and ``line_total`` numerically equal (2.50 == 2.5); ``unit`` equal after normalisation and
   the synonyms below (pc/piece/pieces -> pcs, ltr/litre/liter -> l, kgs -> kg, boxes -> box, cases/ctn -> case,
   doz -> dozen). A field missing on both sides counts as correct.

6. A truth line is "fully right" when it is paired and the pair's quantity, unit price and line total are all
   right (rule 5): ``lines_fully_right`` is their share of the truth lines, the headline beside the F1 of the
   matching (which pairs descriptions only). :func:`line_verdicts` says it per predicted line (the trust
   calibration).

``aggregate`` micro-averages: it sums the counts of many comparisons and recomputes the rates.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.reading.numbers import ascii_digits

MATCH_THRESHOLD = 0.8
NUMBER_BONUS = 0.05
FIELDS = ("description", "quantity", "unit", "unit_price", "line_total")
NUMERIC_FIELDS = ("quantity", "unit_price", "line_total")
UNIT_SYNONYMS = {
    "pc": "pcs",
    "piece": "pcs",
    "pieces": "pcs",
    "ltr": "l",
    "litre": "l",
    "liter": "l",
    "litres": "l",
    "liters": "l",
    "kgs": "kg",
    "boxes": "box",
    "cases": "case",
    "ctn": "case",
    "doz": "dozen",
}
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def normalise_text(text: str | None) -> str:
    """The form descriptions are compared in (rule 1)."""
    if not text:
        return ""
    folded = ascii_digits(unicodedata.normalize("NFKC", text)).casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", folded)).strip()


def normalise_unit(unit: str | None) -> str:
    text = normalise_text(unit).replace(" ", "")
    return UNIT_SYNONYMS.get(text, text)


def similarity(a: str | None, b: str | None) -> float:
    """Description similarity in [0, 1] (rule 2)."""
    left, right = normalise_text(a), normalise_text(b)
    if not left or not right:
        return 1.0 if left == right else 0.0
    ratio = difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()
    tokens_left, tokens_right = set(left.split()), set(right.split())
    shorter = min(len(tokens_left), len(tokens_right))
    overlap = len(tokens_left & tokens_right) / shorter if shorter >= 2 else 0.0
    return max(ratio, overlap)


def _close(truth: Decimal | None, predicted: Decimal | None) -> bool:
    if truth is None or predicted is None:
        return False
    return abs(truth - predicted) <= abs(truth) * Decimal("0.005")


def _field_correct(name: str, truth: ExtractedItem, predicted: ExtractedItem) -> bool:
    expected, actual = getattr(truth, name), getattr(predicted, name)
    if name == "description":
        return normalise_text(expected) == normalise_text(actual)
    if name == "unit":
        return normalise_unit(expected) == normalise_unit(actual)
    if expected is None or actual is None:
        return expected is None and actual is None
    return bool(expected == actual)


@dataclass(frozen=True)
class ItemScores:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    field_correct: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    fully_right: int = 0  # pairs whose quantity, unit price and line total are all right

    @property
    def lines_fully_right(self) -> float:
        """Share of the truth lines read with all their numbers right (1.0 when there are none)."""
        return self.fully_right / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 1.0

    @property
    def field_accuracy(self) -> dict[str, float]:
        """Share of matched pairs with each field right (1.0 when nothing matched)."""
        return {name: self.field_correct[name] / self.tp if self.tp else 1.0 for name in FIELDS}

    @property
    def numeric_accuracy(self) -> float:
        """Share of the numeric fields (quantity, unit price, line total) of matched pairs that are exact."""
        correct = sum(self.field_correct[name] for name in NUMERIC_FIELDS)
        return correct / (len(NUMERIC_FIELDS) * self.tp) if self.tp else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "numeric_accuracy": round(self.numeric_accuracy, 4),
            "lines_fully_right": round(self.lines_fully_right, 4),
            "field_accuracy": {name: round(value, 4) for name, value in self.field_accuracy.items()},
        }


def match(truth: Sequence[ExtractedItem], predicted: Sequence[ExtractedItem]) -> list[tuple[int, int]]:
    """Index pairs (truth, predicted) under the matching rule, in truth order."""
    candidates = []
    for i, expected in enumerate(truth):
        for j, actual in enumerate(predicted):
            score = similarity(expected.description, actual.description)
            if score < MATCH_THRESHOLD:
                continue
            agreeing = sum(_close(getattr(expected, name), getattr(actual, name)) for name in NUMERIC_FIELDS)
            candidates.append((-(score + NUMBER_BONUS * agreeing), i, j))
    candidates.sort()
    used_truth: set[int] = set()
    used_predicted: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_truth and j not in used_predicted:
            used_truth.add(i)
            used_predicted.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def compare(truth: Sequence[ExtractedItem], predicted: Sequence[ExtractedItem]) -> ItemScores:
    """Scores of ``predicted`` items against ``truth`` items of one invoice."""
    pairs = match(truth, predicted)
    correct = {name: sum(_field_correct(name, truth[i], predicted[j]) for i, j in pairs) for name in FIELDS}
    fully = sum(_numbers_right(truth[i], predicted[j]) for i, j in pairs)
    return ItemScores(len(pairs), len(predicted) - len(pairs), len(truth) - len(pairs), correct, fully)


def _numbers_right(truth: ExtractedItem, predicted: ExtractedItem) -> bool:
    return all(_field_correct(name, truth, predicted) for name in NUMERIC_FIELDS)


def line_verdicts(truth: Sequence[ExtractedItem], predicted: Sequence[ExtractedItem]) -> list[bool]:
    """Per predicted line of one invoice: fully right (paired with a truth line, its numbers all right)."""
    right = dict.fromkeys(range(len(predicted)), False)
    for i, j in match(truth, predicted):
        right[j] = _numbers_right(truth[i], predicted[j])
    return [right[j] for j in range(len(predicted))]


def compare_order(truth: Sequence[ExtractedInvoice], predicted: Sequence[ExtractedInvoice]) -> ItemScores:
    """Scores of an order: items are compared invoice by invoice (by ``invoice_index``), then summed."""
    expected = {invoice.invoice_index: invoice.items for invoice in truth}
    actual = {invoice.invoice_index: invoice.items for invoice in predicted}
    return aggregate(compare(expected.get(index, ()), actual.get(index, ())) for index in sorted({*expected, *actual}))


def aggregate(scores: Iterable[ItemScores]) -> ItemScores:
    """Micro-average: counts summed over every comparison, rates recomputed from the sums."""
    tp = fp = fn = fully = 0
    correct = dict.fromkeys(FIELDS, 0)
    for score in scores:
        tp, fp, fn, fully = tp + score.tp, fp + score.fp, fn + score.fn, fully + score.fully_right
        for name in FIELDS:
            correct[name] += score.field_correct[name]
    return ItemScores(tp, fp, fn, correct, fully)
