"""Table reconstruction from OCR boxes (no OCR run): rows, headers in several phrasings, multi-line
descriptions, totals, currency, receipts, segments, and the extractor around it with an in-memory reader."""

import sys
from decimal import Decimal

import pytest

from invoice_pipeline.extractor import ExtractedItem, InvoiceImages, PreparedImage
from invoice_pipeline.providers.ocr import OcrExtractor, OcrUnavailableError, RapidOcrReader
from invoice_pipeline.reading.header_reader import parse_number
from invoice_pipeline.reading.invoice_reader import reconstruct, reconstruct_boxes
from invoice_pipeline.reading.rows import Segment, group_rows, merge_segments
from invoice_pipeline.reading.validation import validate
from invoice_pipeline.settings import ConfigError

D = Decimal
CHAR = 9  # px per character of the fixture "font"


def left(x, y, text, confidence=0.99, height=22):
    return (text, x, y, x + CHAR * len(text), y + height, confidence)


def right(x1, y, text, confidence=0.99, height=22):
    return (text, x1 - CHAR * len(text), y, x1, y + height, confidence)


def page(*rows):
    """Boxes of rows given as (y, [box factories taking y])."""
    return [make(y) for y, makers in rows for make in makers]


def cell(kind, x, text, dy=0):
    return lambda y: kind(x, y + dy, text)


CLASSIC = page(
    (20, [cell(left, 40, "Golden Harvest Foods LLC"), cell(right, 728, "INVOICE")]),
    (120, [cell(left, 466, "Currency:"), cell(right, 728, "KWD")]),
    (
        276,
        [
            cell(left, 39, "Description"),
            cell(right, 433, "Qty"),
            cell(left, 448, "Unit"),
            cell(right, 617, "Unit price"),
            cell(right, 729, "Total"),
        ],
    ),
    (
        304,
        [
            cell(left, 39, "Carrots"),
            cell(right, 431, "1.5"),
            cell(left, 447, "kg"),
            cell(right, 616, "0.271"),
            cell(right, 728, "0.407"),
        ],
    ),
    # a slightly tilted row: boxes a few pixels apart still form one row
    (
        332,
        [
            cell(left, 40, "Beef tenderloin", dy=3),
            cell(right, 431, "4"),
            cell(left, 447, "kg", dy=-2),
            cell(right, 616, "13.815"),
            cell(right, 728, "55.260"),
        ],
    ),
    (
        360,
        [
            cell(left, 40, "Eggs large"),
            cell(right, 431, "10"),
            cell(left, 447, "dozen"),
            cell(right, 616, "1,250.000"),
            cell(right, 728, "12,500.000"),
        ],
    ),
    (420, [cell(left, 466, "Subtotal"), cell(right, 728, "12,555.667")]),
    (446, [cell(left, 466, "VAT 0%"), cell(right, 728, "0.000")]),
    (472, [cell(left, 466, "Total KWD"), cell(right, 728, "12,555.667")]),
    (900, [cell(left, 40, "Payment due within 30 days of the invoice date.")]),
)


def test_a_classic_table_is_read_whole():
    invoice = reconstruct_boxes(CLASSIC, invoice_index=2)
    assert invoice.invoice_index == 2
    assert invoice.currency == "KWD"
    assert invoice.printed_total == D("12555.667")
    assert invoice.items == (
        ExtractedItem("Carrots", D("1.5"), "kg", D("0.271"), D("0.407")),
        ExtractedItem("Beef tenderloin", D(4), "kg", D("13.815"), D("55.260")),
        ExtractedItem("Eggs large", D(10), "dozen", D("1250.000"), D("12500.000")),
    )
    assert validate(invoice) == []
    assert invoice.input_tokens == invoice.output_tokens == 0 and invoice.cost_usd == 0


def test_other_header_words_and_column_order_with_an_ignored_number_column():
    boxes = page(
        (
            100,
            [
                cell(left, 40, "#"),
                cell(left, 80, "Item"),
                cell(left, 380, "UOM"),
                cell(right, 530, "Quantity"),
                cell(right, 630, "Rate"),
                cell(right, 728, "Amount"),
            ],
        ),
        (
            130,
            [
                cell(left, 40, "1"),
                cell(left, 80, "Lemons"),
                cell(left, 380, "kg"),
                cell(right, 530, "2.5"),
                cell(right, 630, "0.68"),
                cell(right, 728, "1.70"),
            ],
        ),
        (
            160,
            [
                cell(left, 40, "2"),
                cell(left, 80, "Paper towels"),
                cell(left, 380, "case"),
                cell(right, 530, "3"),
                cell(right, 630, "32.86"),
                cell(right, 728, "98.58"),
            ],
        ),
        (200, [cell(left, 466, "Grand total USD"), cell(right, 728, "100.28")]),
    )
    invoice = reconstruct_boxes(boxes)
    assert [(i.description, i.quantity, i.unit, i.unit_price, i.line_total) for i in invoice.items] == [
        ("Lemons", D("2.5"), "kg", D("0.68"), D("1.70")),
        ("Paper towels", D(3), "case", D("32.86"), D("98.58")),
    ]
    assert (invoice.currency, invoice.printed_total) == ("USD", D("100.28"))


@pytest.mark.parametrize(
    "headers",
    [
        ("Product", "Quantity", "U/M", "Price", "Line total"),
        ("Item description", "QTY", "Units", "Unit cost", "Net amount"),
        ("Particulars", "Qty.", "Measure", "Rate", "Value"),
    ],
)
def test_header_phrasings(headers):
    xs = [(left, 40), (right, 433), (left, 448), (right, 617), (right, 729)]
    values = ("Tomatoes", "2", "kg", "0.750", "1.500")
    boxes = page(
        (100, [cell(kind, x, text) for (kind, x), text in zip(xs, headers, strict=True)]),
        (130, [cell(kind, x, text) for (kind, x), text in zip(xs, values, strict=True)]),
    )
    assert reconstruct_boxes(boxes).items == (ExtractedItem("Tomatoes", D(2), "kg", D("0.750"), D("1.500")),)


def test_multi_line_descriptions_are_joined_and_the_next_item_starts_on_its_numbers():
    boxes = page(
        (
            100,
            [
                cell(left, 39, "Item description"),
                cell(right, 433, "Qty"),
                cell(left, 448, "Unit"),
                cell(right, 617, "Price"),
                cell(right, 729, "Line total"),
            ],
        ),
        (
            130,
            [
                cell(left, 39, "Paper towels, premium quality,"),
                cell(right, 433, "3"),
                cell(left, 448, "case"),
                cell(right, 617, "32.86"),
                cell(right, 729, "98.58"),
            ],
        ),
        (152, [cell(left, 39, "vacuum packed")]),
        (
            190,
            [
                cell(left, 39, "Hand soap refill, imported,"),
                cell(right, 433, "5"),
                cell(left, 448, "pcs"),
                cell(right, 617, "6.12"),
                cell(right, 729, "30.60"),
            ],
        ),
        (212, [cell(left, 39, "supplier lot checked")]),
        (260, [cell(left, 466, "Total USD"), cell(right, 728, "129.18")]),
    )
    items = reconstruct_boxes(boxes).items
    assert [item.description for item in items] == [
        "Paper towels, premium quality, vacuum packed",
        "Hand soap refill, imported, supplier lot checked",
    ]
    assert [item.line_total for item in items] == [D("98.58"), D("30.60")]


def test_a_box_spanning_two_columns_is_split_by_words():
    boxes = page(
        (
            100,
            [
                cell(left, 39, "Description"),
                cell(right, 433, "Qty"),
                cell(left, 448, "Unit"),
                cell(right, 617, "Unit price"),
                cell(right, 729, "Total"),
            ],
        ),
        (
            130,
            [
                cell(left, 39, "Carrots"),
                lambda y: ("4 kg", 415, y, 470, y + 22, 0.98),
                cell(right, 617, "0.271"),
                cell(right, 729, "1.084"),
            ],
        ),
    )
    assert reconstruct_boxes(boxes).items == (ExtractedItem("Carrots", D(4), "kg", D("0.271"), D("1.084")),)


def test_low_confidence_boxes_are_ignored():
    boxes = [*CLASSIC, left(40, 600, "Ghost row", confidence=0.2), right(728, 600, "9.999", confidence=0.3)]
    assert len(reconstruct_boxes(boxes).items) == 3


def test_unreadable_digits_drop_the_numbers_instead_of_storing_misreads():
    # Arabic-Indic digits come back from the bundled models as look-alike letters
    boxes = page(
        (
            100,
            [
                cell(left, 39, "Description"),
                cell(right, 433, "Qty"),
                cell(left, 448, "Unit"),
                cell(right, 617, "Unit price"),
                cell(right, 729, "Total"),
            ],
        ),
        (
            130,
            [
                cell(left, 39, "Avocado Hass"),
                cell(right, 433, "r"),
                cell(left, 448, "box"),
                cell(right, 617, "19.VV"),
                cell(right, 729, "9.0ε"),
            ],
        ),
        (
            160,
            [
                cell(left, 39, "Greek yoghurt"),
                cell(right, 433, "0"),
                cell(left, 448, "case"),
                cell(right, 617, "."),
                cell(right, 729, "1€1.00"),
            ],
        ),
        (220, [cell(left, 466, "Total KWD"), cell(right, 728, "01...0")]),
    )
    invoice = reconstruct_boxes(boxes)
    assert [(i.description, i.unit) for i in invoice.items] == [("Avocado Hass", "box"), ("Greek yoghurt", "case")]
    assert all(i.quantity is None and i.unit_price is None and i.line_total is None for i in invoice.items)
    assert invoice.printed_total is None and invoice.currency == "KWD"


def test_arabic_indic_digits_are_read_when_the_ocr_returns_them():
    assert parse_number("١٢.٥٠٠") == D("12.500")
    assert parse_number("KWD 1,250.000") == D("1250.000")
    assert parse_number("€12.50") == D("12.50")
    assert parse_number("12.VV") is None


RECEIPT = page(
    (10, [cell(left, 16, "Golden Harvest Foods LLC")]),
    (44, [cell(left, 16, "Receipt INV-2026-88534")]),
    (78, [cell(left, 16, "Date 2026-09-14")]),
    (112, [cell(left, 16, "Parmesan grated")]),
    (146, [cell(left, 43, "3 kg × 17.40"), cell(right, 560, "52.20")]),
    (180, [cell(left, 16, "Canned chickpeas")]),
    (214, [cell(left, 45, "10 case x 20.32"), cell(right, 560, "203.20")]),
    (248, [cell(left, 16, "2 x Lemons"), cell(right, 560, "4.00")]),
    (282, [cell(left, 16, "TOTAL USD"), cell(right, 560, "259.40")]),
    (316, [cell(left, 16, "Items 3")]),
)


def test_a_receipt_without_header_is_read_from_its_line_patterns():
    invoice = reconstruct_boxes(RECEIPT)
    assert invoice.items == (
        ExtractedItem("Parmesan grated", D(3), "kg", D("17.40"), D("52.20")),
        ExtractedItem("Canned chickpeas", D(10), "case", D("20.32"), D("203.20")),
        ExtractedItem("Lemons", D(2), None, None, D("4.00")),
    )
    assert (invoice.currency, invoice.printed_total) == ("USD", D("259.40"))


def shifted(boxes, dy, text_changes=None):
    changes = text_changes or {}
    return [(changes.get(b[0], b[0]), b[1], b[2] + dy, b[3], b[4] + dy, b[5]) for b in boxes]


def test_segments_drop_rows_cut_at_edges_and_keep_the_overlap_once():
    # segment 1 shows y 0..250 (the "2 x Lemons" row is cut at its bottom edge); segment 2 shows y 130..340,
    # where "Canned chickpeas" starts cut at the top edge. The overlap reads "×" as "x" once.
    first = [b for b in RECEIPT if b[2] < 250]
    first = [(b[0], b[1], b[2], b[3], min(b[4], 250), b[5]) for b in first]
    second = [b for b in RECEIPT if b[4] > 190]
    second = [(b[0], b[1], max(b[2], 190) - 190, b[3], b[4] - 190, b[5]) for b in second]
    rows = merge_segments([Segment(first, 250), Segment(shifted(second, 0, {"3 kg × 17.40": "3 kg x 17.40"}), 150)])
    invoice = reconstruct(rows)
    assert [item.description for item in invoice.items] == ["Parmesan grated", "Canned chickpeas", "Lemons"]
    assert invoice.printed_total == D("259.40")


def test_rows_group_by_vertical_overlap():
    rows = group_rows([left(10, 100, "a"), left(100, 108, "b"), left(10, 140, "c"), left(200, 95, "d")])
    assert [[box[0] for box in row] for row in rows] == [["a", "b", "d"], ["c"]]


def test_nothing_recognisable_gives_an_empty_invoice():
    invoice = reconstruct_boxes([left(10, 10, "Hello"), left(10, 50, "world")])
    assert invoice.items == () and invoice.printed_total is None and invoice.currency is None
    assert reconstruct_boxes([]).items == ()


class ListReader:
    """Returns prepared boxes per segment, in order."""

    def __init__(self, *segments):
        self.segments = list(segments)
        self.calls = 0

    def read(self, image):
        self.calls += 1
        return self.segments.pop(0)


IMAGE = PreparedImage(b"not decoded by the fake", "image/jpeg", 768, 1086)


def test_the_extractor_reads_every_segment_and_reports_no_tokens():
    reader = ListReader(CLASSIC)
    extractor = OcrExtractor("ocr-table-v1", reader=reader)
    invoice = extractor.extract(InvoiceImages(5, 1, (IMAGE,)), deadline=float("inf"))
    assert extractor.llm == "ocr-table-v1"
    assert invoice.invoice_index == 1 and len(invoice.items) == 3 and invoice.input_tokens == 0
    assert reader.calls == 1


def test_the_extractor_stops_at_the_deadline_with_a_transient_error():
    from invoice_pipeline.errors import TransientError

    with pytest.raises(TransientError, match="order 5 invoice 0 ran out of time at segment 1 of 2"):
        OcrExtractor(reader=ListReader([], [])).extract(InvoiceImages(5, 0, (IMAGE, IMAGE)), deadline=0.0)


def test_an_unknown_offline_model_is_a_configuration_error():
    with pytest.raises(ConfigError, match="unknown offline model 'ocr-nope'.*ocr-table-v1"):
        OcrExtractor("ocr-nope", reader=ListReader())


def test_a_missing_ocr_extra_is_a_configuration_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # makes `import rapidocr` raise ImportError
    with pytest.raises(OcrUnavailableError, match=r"missing module 'rapidocr'.*requirements-ocr.txt"):
        RapidOcrReader()
    assert issubclass(OcrUnavailableError, ConfigError)
