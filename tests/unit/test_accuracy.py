"""Item matching and scores."""

from decimal import Decimal

import pytest

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoices_cli.accuracy import ItemScores, aggregate, compare, compare_order, match, normalise_text, similarity


def item(description, quantity="1", unit="kg", unit_price="1.000", line_total="1.000"):
    def number(value):
        return None if value is None else Decimal(value)

    return ExtractedItem(description, number(quantity), unit, number(unit_price), number(line_total))


TRUTH = [
    item("Tomatoes", "2", "kg", "0.750", "1.500"),
    item("Chicken breast boneless", "12", "kg", "2.939", "35.268"),
    item("Eggs large", "4", "dozen", "1.706", "6.824"),
]


def test_a_perfect_extraction_scores_one_everywhere():
    scores = compare(TRUTH, list(TRUTH))
    assert (scores.tp, scores.fp, scores.fn) == (3, 0, 0)
    assert scores.precision == scores.recall == scores.f1 == 1.0
    assert scores.field_accuracy == dict.fromkeys(["description", "quantity", "unit", "unit_price", "line_total"], 1.0)
    assert scores.numeric_accuracy == 1.0


def test_normalisation_ignores_case_punctuation_spacing_and_digit_script():
    assert normalise_text("  Chicken  Breast, BONELESS!  ") == "chicken breast boneless"
    assert normalise_text("Cream ٣٥%") == "cream 35"
    predicted = [
        item("TOMATOES.", "2", "KG", "0.75", "1.5"),
        item("chicken breast  boneless", "12", "Kgs", "2.939", "35.268"),
    ]
    scores = compare(TRUTH[:2], predicted)
    assert scores.tp == 2 and scores.field_accuracy["description"] == 1.0
    assert scores.field_accuracy["unit"] == 1.0 and scores.numeric_accuracy == 1.0


def test_misread_descriptions_still_match_and_count_as_wrong_descriptions():
    predicted = [
        item("Tomatoe5", "2", "kg", "0.750", "1.500"),
        item("Chicken breast bonelss", "12", "kg", "2.939", "35.268"),
    ]
    scores = compare(TRUTH, predicted)
    assert (scores.tp, scores.fp, scores.fn) == (2, 0, 1)
    assert scores.field_correct["description"] == 0
    assert scores.precision == 1.0 and scores.recall == pytest.approx(2 / 3) and scores.f1 == pytest.approx(0.8)


def test_a_description_cut_after_its_first_line_matches_by_token_overlap():
    truth = [item("Paper towels, premium quality, vacuum packed")]
    assert similarity("Paper towels, premium quality,", truth[0].description) >= 0.8
    assert compare(truth, [item("Paper towels, premium quality,")]).tp == 1
    # single tokens do not match longer names on overlap alone
    assert similarity("Beef", "Beef mince") < 0.8


def test_different_items_do_not_match():
    scores = compare(TRUTH[:1], [item("Potatoes", "2", "kg", "0.750", "1.500")])
    assert (scores.tp, scores.fp, scores.fn) == (0, 1, 1)
    assert scores.f1 == 0.0


def test_numbers_decide_between_lines_with_the_same_description():
    truth = [item("Lemons", "1", "kg", "2.000", "2.000"), item("Lemons", "5", "kg", "2.000", "10.000")]
    predicted = [item("Lemons", "5", "kg", "2.000", "10.000"), item("Lemons", "1", "kg", "2.000", "2.000")]
    assert match(truth, predicted) == [(0, 1), (1, 0)]
    assert compare(truth, predicted).numeric_accuracy == 1.0


def test_wrong_fields_are_counted_per_field():
    predicted = [item("Tomatoes", "3", "pcs", "0.750", "1.500"), item("Eggs large", "4", "dozen", None, "6.824")]
    scores = compare(TRUTH, predicted)
    assert scores.tp == 2
    assert scores.field_correct == {"description": 2, "quantity": 1, "unit": 1, "unit_price": 1, "line_total": 2}
    assert scores.numeric_accuracy == pytest.approx(4 / 6)


def test_missing_descriptions_and_empty_sides():
    assert compare([], []).f1 == 1.0
    assert compare([], TRUTH).precision == 0.0
    assert compare(TRUTH, []).recall == 0.0
    nameless = item(None, "2", "kg", "1.000", "2.000")
    assert compare([nameless], [nameless]).tp == 1
    assert compare([nameless], [item("Tomatoes", "2", "kg", "1.000", "2.000")]).tp == 0


def test_aggregate_is_micro_averaged():
    one = compare(TRUTH, list(TRUTH))  # 3 of 3
    other = compare([item("A b"), item("C d")], [item("X y")])  # 0 of 2, 1 false positive
    total = aggregate([one, other])
    assert (total.tp, total.fp, total.fn) == (3, 1, 2)
    assert total.precision == 0.75 and total.recall == 0.6
    assert aggregate([]) == ItemScores()


def test_an_order_is_compared_invoice_by_invoice():
    truth = [ExtractedInvoice(0, "KWD", None, tuple(TRUTH[:2])), ExtractedInvoice(1, "KWD", None, (TRUTH[2],))]
    # the right items, but the third one attributed to the wrong invoice
    predicted = [ExtractedInvoice(0, "KWD", None, tuple(TRUTH))]
    scores = compare_order(truth, predicted)
    assert (scores.tp, scores.fp, scores.fn) == (2, 1, 1)
    assert scores.as_dict()["f1"] == pytest.approx(2 / 3, abs=1e-4)
