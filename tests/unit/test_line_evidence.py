"""Line evidence: the provenance normaliser (every provider's page, bbox and row text), the checks and the trust
function, and where the offline reader finds each line's row again."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.providers import provenance, textract
from invoice_pipeline.providers.answer import ModelInvoice
from invoice_pipeline.providers.normalise import MAX_SOURCE_TEXT_CHARS, normalise, normalise_provenance
from invoice_pipeline.tables import evidence


def item(
    description: str | None = "Rice 5 kg",
    quantity: str | None = "2",
    unit_price: str | None = "3.750",
    line_total: str | None = "7.500",
    **where: object,
) -> ExtractedItem:
    number = lambda text: None if text is None else Decimal(text)  # noqa: E731
    return ExtractedItem(description, number(quantity), None, number(unit_price), number(line_total), **where)  # type: ignore[arg-type]


def invoice(
    *items: ExtractedItem, printed_total: str | None = None, currency: str | None = "KWD", **extra
) -> ExtractedInvoice:
    total = None if printed_total is None else Decimal(printed_total)
    return ExtractedInvoice(0, currency, total, tuple(items), **extra)


# ---- the normaliser ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bbox", "stored", "code"),
    [
        ((0.1, 0.2, 0.9, 0.25), (0.1, 0.2, 0.9, 0.25), None),
        ((0.1, 0.2, 1.01, 0.25), (0.1, 0.2, 1.0, 0.25), None),  # a glyph's overhang: clamped
        ((0.9, 0.25, 0.1, 0.2), (0.1, 0.2, 0.9, 0.25), "bbox_reordered"),
        ((0.1, 0.2, 1.5, 0.25), None, "bad_bbox"),  # far outside the page
        ((-3, 0.2, 0.5, 0.25), None, "bad_bbox"),
        ((0.1, 0.2, 0.9), None, "bad_bbox"),  # three numbers
        ((0.1, 0.2, 0.9, 0.3, 0.4), None, "bad_bbox"),
        (("0.1", 0.2, 0.9, 0.3), None, "bad_bbox"),  # a string
        ((float("nan"), 0.2, 0.9, 0.3), None, "bad_bbox"),
        ((float("inf"), 0.2, 0.9, 0.3), None, "bad_bbox"),
        ((True, 0.2, 0.9, 0.3), None, "bad_bbox"),
        ((0.1, 0.2, 0.1, 0.3), None, "bad_bbox"),  # no area
    ],
)
def test_a_bbox_is_four_fractions_of_the_page_or_null_with_a_warning(bbox, stored, code):
    result = normalise_provenance(invoice(item(page=1, bbox=bbox)), pages=1)
    assert result.items[0].bbox == stored
    assert [w.code for w in result.warnings] == ([code] if code else [])
    assert all(w.line_no == 1 for w in result.warnings)


@pytest.mark.parametrize(("page", "stored"), [(1, 1), (3, 3), (4, None), (0, None), (-1, None), (True, None)])
def test_a_page_past_the_document_is_null_with_a_warning(page, stored):
    result = normalise_provenance(invoice(item(page=page)), pages=3)
    assert result.items[0].page == stored
    assert [w.code for w in result.warnings] == ([] if stored else ["bad_page"])


def test_source_text_loses_control_characters_and_is_cut_at_the_limit():
    result = normalise_provenance(
        invoice(item(source_text="Rice\x00 5 kg\t2  3.750\n7.500"), item(source_text="x" * 5000)), pages=1
    )
    assert result.items[0].source_text == "Rice 5 kg 2 3.750 7.500"
    assert result.items[1].source_text == "x" * MAX_SOURCE_TEXT_CHARS
    assert [(w.code, w.line_no) for w in result.warnings] == [("control_characters", 1), ("text_truncated", 2)]


def test_provenance_is_not_part_of_a_lines_value():
    assert item(page=1, bbox=(0, 0, 1, 1), source_text="a") == item()


def test_a_models_page_and_row_as_printed_reach_the_line():
    answer = ModelInvoice.model_validate(
        {
            "currency": "KWD",
            "printed_total": None,
            "items": [
                {
                    "description": "Rice",
                    "quantity": "2",
                    "unit": None,
                    "unit_price": "3.750",
                    "line_total": "7.500",
                    "page": 2,
                    "source_text": "Rice  2 x 3.750  7.500",
                },
                {"description": "Oil", "quantity": None, "unit": None, "unit_price": None, "line_total": "1.000"},
            ],
        }
    )
    found = normalise_provenance(normalise(answer, invoice_index=0), pages=1)
    assert (found.items[0].page, found.items[0].source_text) == (None, "Rice 2 x 3.750 7.500")  # page 2 of 1
    assert (found.items[1].page, found.items[1].source_text) == (None, None)  # an answer without them reads
    assert [w.code for w in found.warnings] == ["bad_page"]


# ---- Textract: geometry and confidence from its response shape ----------------------------------------------


def detection(text: str, left: float, top: float, width: float, height: float, confidence: float) -> dict:
    return {
        "Text": text,
        "Geometry": {
            "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
            "Polygon": [{"X": left, "Y": top}, {"X": left + width, "Y": top}],
        },
        "Confidence": confidence,
    }


def expense_field(kind: str, value: dict) -> dict:
    return {"Type": {"Text": kind, "Confidence": 99.0}, "ValueDetection": value, "PageNumber": 1}


def test_textract_lines_carry_the_rows_box_text_page_and_lowest_confidence():
    fields = [
        expense_field("ITEM", detection("SONY VIAO", 0.05, 0.30, 0.3, 0.02, 99.2)),
        expense_field("QUANTITY", detection("2", 0.45, 0.30, 0.03, 0.02, 87.5)),
        expense_field("PRICE", detection("$1,379.98", 0.8, 0.30, 0.15, 0.02, 98.0)),
        expense_field("EXPENSE_ROW", detection("SONY VIAO 2 $1,379.98", 0.04, 0.295, 0.92, 0.03, 90.0)),
    ]
    without_row = fields[:3]
    response = {
        "ExpenseDocuments": [
            {
                "ExpenseIndex": 1,
                "LineItemGroups": [
                    {"LineItems": [{"LineItemExpenseFields": fields}, {"LineItemExpenseFields": without_row}]}
                ],
            }
        ]
    }
    read = normalise_provenance(normalise(textract.read_answer(response, page=2), invoice_index=0), pages=2)
    first, second = read.items
    assert (first.page, first.source_text, first.confidence) == (2, "SONY VIAO 2 $1,379.98", 0.875)
    assert first.bbox == pytest.approx((0.04, 0.295, 0.96, 0.325))
    assert second.source_text is None
    assert second.bbox == pytest.approx((0.05, 0.30, 0.95, 0.32))  # the box around its fields
    assert read.warnings == ()


def test_textract_geometry_that_is_not_a_box_is_dropped_by_the_normaliser():
    broken = detection("2", 0.45, 0.30, 0.03, 0.02, 250.0)  # confidences are 0-100
    broken["Geometry"]["BoundingBox"] = {"Width": "wide"}
    response = {
        "ExpenseDocuments": [
            {
                "LineItemGroups": [
                    {
                        "LineItems": [
                            {
                                "LineItemExpenseFields": [
                                    expense_field("QUANTITY", broken),
                                    expense_field("PRICE", detection("3.0", 2.5, 0.3, 0.1, 0.02, 250.0)),
                                ]
                            }
                        ]
                    }
                ]
            }
        ]
    }
    read = normalise_provenance(normalise(textract.read_answer(response), invoice_index=0), pages=1)
    assert (read.items[0].bbox, read.items[0].confidence) == (None, None)
    assert sorted(w.code for w in read.warnings) == ["bad_bbox", "bad_confidence"]


# ---- checks and trust -----------------------------------------------------------------------------------------


def checks_of(found: evidence.LineEvidence) -> dict:
    return json.loads(found.checks_json())


def test_a_line_whose_numbers_and_invoice_add_up_is_verified():
    read = invoice(
        item(source_text="Rice 5 kg 2 3.750 7.500"), item("Oil", "1", "1.000", "1.000"), printed_total="8.500"
    )
    lines = evidence.line_evidence(read)
    assert [line.trust for line in lines] == ["verified", "verified"]
    assert checks_of(lines[0]) == {
        "passed": ["numbers_present", "arithmetic", "printed", "clean_description", "invoice_total"],
        "failed": [],
    }


def test_arithmetic_failing_makes_a_line_doubtful_and_the_others_only_plausible():
    read = invoice(item(line_total="7.600"), item("Oil", "1", "1.000", "1.000"), printed_total="8.600")
    lines = evidence.line_evidence(read)
    assert [line.trust for line in lines] == ["doubtful", "verified"]
    assert "arithmetic" in checks_of(lines[0])["failed"]
    missing_row = evidence.line_evidence(invoice(item(), printed_total="9.500"))
    assert [line.trust for line in missing_row] == ["plausible"]
    assert checks_of(missing_row[0])["failed"] == ["invoice_total"]


def test_one_unit_of_the_last_place_is_rounding():
    assert evidence.line_evidence(invoice(item("Rice", "3", "0.333", "1.000"), currency="KWD"))[0].trust == "plausible"
    assert "arithmetic" in evidence.line_evidence(invoice(item("Rice", "3", "0.333", "1.000")))[0].passed


def test_a_number_not_in_the_row_as_printed_is_doubtful():
    line = evidence.line_evidence(invoice(item(source_text="Rice 5 kg 2 3,750 7,600"), printed_total="7.500"))[0]
    assert line.trust == "doubtful" and "printed" in line.failed


def test_a_line_without_a_line_total_is_doubtful_and_without_quantity_at_best_plausible():
    assert evidence.line_evidence(invoice(item(line_total=None)))[0].trust == "doubtful"
    only_total = evidence.line_evidence(invoice(item(quantity=None, unit_price=None), printed_total="7.500"))[0]
    assert only_total.trust == "plausible" and "numbers_present" in only_total.failed


@pytest.mark.parametrize(
    ("description", "clean"),
    [
        ("Rice 5 kg", True),
        ("Beratung 01.03.2024", False),  # a date column read into the description
        ("4711001 Kaffeebohnen", False),  # an article number
        ("Kaffeebohnen 7.500", False),  # the line total again
        ("Widget 2", True),
    ],
)
def test_a_description_carrying_another_columns_value_is_not_clean(description, clean):
    line = evidence.line_evidence(invoice(item(description)))[0]
    assert ("clean_description" in line.passed) is clean
    assert ("clean_description" in line.failed) is not clean


def test_agreement_with_other_models_lines():
    read = invoice(item(), item("Oil", "1", "1.000", "1.000"), printed_total="8.500")
    other = [item("RICE 5kg", "2", "3.750", "7.500"), item("Oil", "1", "1.000", "1.100")]
    lines = evidence.line_evidence(read, [other])
    assert [("agreement" in line.passed, line.trust) for line in lines] == [(True, "verified"), (False, "doubtful")]


def test_a_lines_total_printed_below_the_lines_confirms_them_when_the_printed_total_includes_taxes():
    read = invoice(item(), printed_total="9.000", amounts_below=frozenset({Decimal("7.50"), Decimal("1.5")}))
    assert evidence.invoice_evidence(read).passed == ("invoice_total",)
    assert evidence.line_evidence(read)[0].trust == "verified"
    missing = invoice(item(), printed_total="9.000", amounts_below=frozenset({Decimal("8.50")}))
    assert evidence.invoice_evidence(missing).failed == ("invoice_total",)


def test_numbers_split_by_a_reader_are_joined_again():
    assert {Decimal("27946"), Decimal("5589.20"), Decimal("1250.50")} <= evidence.printed_numbers(
        "Total H.T. 27946 ,00  27 946,00  5 589,20  1.250,50"
    )


def test_the_invoice_evidence_counts_rows_that_look_like_items():
    read = invoice(item(), printed_total="7.500", item_rows=2)
    whole = evidence.invoice_evidence(read)
    assert (whole.passed, whole.failed, whole.complete) == (("invoice_total",), ("row_count",), False)
    assert whole.as_json() == {
        "invoice_index": 0,
        "line_count": 1,
        "line_sum": "7.500",
        "printed_total": "7.500",
        "item_rows": 2,
        "passed": ["invoice_total"],
        "failed": ["row_count"],
    }
    assert evidence.line_evidence(read)[0].trust == "plausible"


@pytest.mark.parametrize(
    ("passed", "failed", "has_total", "level"),
    [
        ({"arithmetic", "invoice_total"}, set(), True, "verified"),
        ({"arithmetic", "invoice_total"}, {"clean_description"}, True, "verified"),  # advisory
        ({"arithmetic", "invoice_total"}, {"row_count"}, True, "plausible"),
        ({"arithmetic"}, set(), True, "plausible"),
        ({"arithmetic", "invoice_total"}, {"agreement"}, True, "doubtful"),
        ({"invoice_total"}, {"arithmetic"}, True, "doubtful"),
        ({"invoice_total"}, set(), False, "doubtful"),
        ({"invoice_total"}, {"numbers_present"}, True, "plausible"),  # a total-only line its invoice confirms
        (set(), {"numbers_present"}, True, "doubtful"),  # ... and one nothing confirms
        ({"invoice_total"}, {"numbers_present", "row_count"}, True, "doubtful"),
    ],
)
def test_the_trust_function(passed, failed, has_total, level):
    assert evidence.trust(passed, failed, has_line_total=has_total) == level


# ---- the offline reader's rows --------------------------------------------------------------------------------


def row(y: float, *cells: tuple[str, float, float]) -> tuple:
    return tuple((text, x0, y, x1, y + 10, 0.99) for text, x0, x1 in cells)


def test_each_line_is_found_on_its_row_with_its_box_as_fractions_of_the_page():
    page = provenance.Page(
        rows=[
            row(100, ("Description", 50, 200), ("Qty", 300, 330), ("Price", 400, 450), ("Total", 500, 550)),
            row(130, ("Rice 5 kg", 50, 150), ("2", 320, 330), ("3.750", 410, 450), ("7.500", 510, 550)),
            row(160, ("Oil", 50, 80), ("1", 320, 330), ("1.000", 410, 450), ("1.000", 510, 550)),
            row(175, ("extra virgin", 50, 150)),
            row(190, ("Delivery fee", 50, 150), ("0.500", 510, 550)),
            row(220, ("Total", 400, 450), ("9.000", 510, 550)),
        ],
        width=600,
        height=800,
    )
    read = invoice(item(), item("Oil extra virgin", "1", "1.000", "1.000"), printed_total="9.000")
    located = provenance.locate(read, [page])
    first, second = located.items
    assert (first.page, first.source_text) == (1, "Rice 5 kg 2 3.750 7.500")
    assert first.bbox == pytest.approx((50 / 600, 130 / 800, 550 / 600, 140 / 800))
    assert second.source_text == "Oil 1 1.000 1.000 extra virgin"  # the wrapped description widens the box
    assert second.bbox == pytest.approx((50 / 600, 160 / 800, 550 / 600, 185 / 800))
    assert located.item_rows == 2  # the fee row after the last line is outside the lines' span
    assert evidence.line_evidence(located)[0].trust == "plausible"  # the lines miss the printed 9.000


def test_a_line_not_on_any_row_keeps_no_provenance_and_tall_receipts_map_back_to_their_segment():
    rows = [row(100, ("Rice", 10, 60), ("7.500", 100, 140)), row(1300, ("Oil", 10, 60), ("1.000", 100, 140))]
    pages = provenance.segment_pages(rows, [(200.0, 1000.0), (200.0, 1000.0)])
    located = provenance.locate(
        invoice(item("Rice", None, None, "7.500"), item("Oil", None, None, "1.000"), item("Salt", None, None, "0.2")),
        pages,
    )
    assert [(line.page, line.source_text) for line in located.items] == [
        (1, "Rice 7.500"),
        (2, "Oil 1.000"),
        (None, None),
    ]
    assert located.items[1].bbox == pytest.approx((0.05, 0.3, 0.7, 0.31))


def test_the_model_writing_second_updates_the_first_models_agreement_and_trust():
    mine = [invoice(item(), item("Oil", "1", "1.000", "1.000"), printed_total="8.500")]
    stored = [
        evidence.StoredOtherLine("a", 0, 1, item(), ("arithmetic", "invoice_total"), ()),
        evidence.StoredOtherLine("a", 0, 2, item("Oil", "1", "1.100", "1.100"), ("arithmetic", "invoice_total"), ()),
        evidence.StoredOtherLine("a", 0, 3, item("Salt", "1", "1", "1"), (), ()),  # written before checks existed
        evidence.StoredOtherLine("b", 0, 1, item(), ("invoice_total",), ("agreement",)),  # a third model disagreed
    ]
    updates = {(other.llm, other.line_no): found for other, found in evidence.agreement_updates(mine, stored)}
    assert updates[("a", 1)] == evidence.LineEvidence(("arithmetic", "invoice_total", "agreement"), (), "verified")
    assert updates[("a", 2)].failed == ("agreement",) and updates[("a", 2)].trust == "doubtful"
    assert ("a", 3) not in updates and ("b", 1) not in updates  # unchanged: no checks, or already failed
