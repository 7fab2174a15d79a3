"""Layouts the readers were not tuned on: one test per failure class of docs/reading-layouts.md, on synthetic rows.

Every page is made here (no shared document is copied): words with positions as a PDF's text layer gives them,
read by the whole reading (both readers ranked, ``invoice_reader.reconstruct_pages``).
"""

from decimal import Decimal

import pytest

from invoice_pipeline.reading import vocabulary
from invoice_pipeline.reading.invoice_reader import reconstruct_pages
from tests.unit.word_boxes import page, words

D = Decimal


def read(*pages):
    return reconstruct_pages(list(pages))


def lines(invoice):
    return [(i.description, i.quantity, i.unit_price, i.line_total) for i in invoice.items]


HEAD = words(20, (40, "Example Trading Ltd, 1 Harbour Road"))


# ---- currency symbols attached to amounts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "total", "grand"),
    [
        ("€20.00", "€40.00", "€55.00"),
        ("20,00 €", "40,00 €", "55,00 €"),
        ("EUR 20.00", "EUR 40.00", "EUR 55.00"),
        ("20.00EUR", "40.00EUR", "55.00EUR"),
    ],
)
def test_amounts_with_a_currency_attached_are_numbers(price, total, grand):
    second = price.replace("20", "15")
    invoice = read(
        page(
            HEAD,
            words(60, (40, "Description"), (300, "Qty", "r"), (400, "Price", "r"), (500, "Amount", "r")),
            words(80, (40, "Cable ties"), (300, "2", "r"), (400, price, "r"), (500, total, "r")),
            words(95, (40, "Label tape"), (300, "1", "r"), (400, second, "r"), (500, second, "r")),
            words(130, (330, "Total"), (500, grand, "r")),
        )
    )
    assert lines(invoice) == [("Cable ties", D(2), D(20), D(40)), ("Label tape", D(1), D(15), D(15))]
    assert invoice.currency == "EUR" and invoice.printed_total == D(55)


def test_whole_amounts_with_a_currency_sign_are_amounts_not_reference_numbers():
    invoice = read(
        page(
            HEAD,
            words(60, (40, "Description"), (200, "Qty"), (250, "Price"), (320, "VAT"), (400, "Net"), (480, "Gross")),
            words(
                80,
                (40, "Annual support"),
                (210, "1", "r"),
                (280, "50 €", "r"),
                (340, "20%", "r"),
                (420, "50 €", "r"),
                (500, "60 €", "r"),
            ),
            words(110, (330, "Subtotal"), (500, "50.00 €", "r")),
            words(125, (330, "Total"), (500, "60.00 €", "r")),
        )
    )
    assert lines(invoice) == [("Annual support", D(1), D(50), D(50))]


def test_the_vocabulary_reads_currency_codes_only_as_printed_in_capitals():
    assert vocabulary.currency_of("EUR") == "EUR" and vocabulary.currency_of("(CHF)") == "CHF"
    assert vocabulary.currency_of("20,00€") == "EUR"
    assert vocabulary.currency_of("all") is None and vocabulary.currency_of("Top") is None
    assert vocabulary.strip_currency("EUR 20.00") == "20.00" and vocabulary.strip_currency("€20.00") == "20.00"
    assert vocabulary.strip_currency("TOPS 20") == "TOPS 20"


# ---- footer, tax summary, payment terms and totals are not items ------------------------------------------


def test_footer_tax_summary_payment_terms_and_totals_are_not_items():
    invoice = read(
        page(
            HEAD,
            words(60, (40, "Item"), (300, "Quantity", "r"), (400, "Unit price", "r"), (500, "Amount", "r")),
            words(80, (40, "Printer paper A4"), (300, "10", "r"), (400, "4.50", "r"), (500, "45.00", "r")),
            words(95, (40, "Toner cartridge"), (300, "2", "r"), (400, "60.00", "r"), (500, "120.00", "r")),
            words(130, (330, "Net total"), (500, "165.00", "r")),
            # a tax summary: base x rate = tax is arithmetic too, but no item
            words(150, (40, "VAT rate"), (200, "Base"), (300, "Tax")),
            words(165, (40, "20 %"), (200, "165.00"), (300, "33.00", "r")),
            words(185, (330, "Total due"), (500, "198.00", "r")),
            words(220, (40, "Payment terms: 30 days net, 2 % discount within 10 days: 194.04")),
            words(240, (40, "Bank IBAN GB33 BUKB 2020 1555 5555 55 Registered in England 01234567")),
        )
    )
    assert lines(invoice) == [
        ("Printer paper A4", D(10), D("4.50"), D("45.00")),
        ("Toner cartridge", D(2), D("60.00"), D("120.00")),
    ]
    assert invoice.printed_total == D("165.00")


# ---- other column orders ------------------------------------------------------------------------------------


def test_quantity_before_the_description():
    invoice = read(
        page(
            HEAD,
            words(60, (40, "Qty"), (80, "Description"), (400, "Unit price", "r"), (500, "Total", "r")),
            words(80, (50, "3", "r"), (80, "Hex bolts M8 x 40"), (400, "0.80", "r"), (500, "2.40", "r")),
            words(95, (50, "12", "r"), (80, "Washers 8 mm"), (400, "0.05", "r"), (500, "0.60", "r")),
            words(130, (330, "Total"), (500, "3.00", "r")),
        )
    )
    assert lines(invoice) == [
        ("Hex bolts M8 x 40", D(3), D("0.80"), D("2.40")),
        ("Washers 8 mm", D(12), D("0.05"), D("0.60")),
    ]


def test_unit_price_before_the_quantity_with_whole_prices():
    # every number is whole: only the header's titles tell the price from the quantity
    invoice = read(
        page(
            HEAD,
            words(60, (40, "Description"), (300, "Price", "r"), (360, "Qty", "r"), (460, "Total", "r")),
            words(80, (40, "Desk lamp"), (300, "25", "r"), (360, "4", "r"), (460, "100", "r")),
            words(95, (40, "Chair"), (300, "80", "r"), (360, "3", "r"), (460, "240", "r")),
            words(130, (330, "Total"), (460, "340.00", "r")),
        )
    )
    assert lines(invoice) == [("Desk lamp", D(4), D(25), D(100)), ("Chair", D(3), D(80), D(240))]


# ---- items continued on page 2, allowance and charge lines --------------------------------------------------


def test_items_continued_on_the_next_page_and_allowance_lines_that_are_not_items():
    first = page(
        HEAD,
        words(60, (40, "Description"), (300, "Qty", "r"), (400, "Price", "r"), (500, "Amount", "r")),
        words(80, (40, "Garden hose 20 m"), (300, "2", "r"), (400, "19.90", "r"), (500, "39.80", "r")),
        words(95, (40, "Hose reel"), (300, "1", "r"), (400, "34.50", "r"), (500, "34.50", "r")),
        words(110, (40, "Discount 10 %"), (500, "-7.43", "r")),
        words(125, (40, "Freight charge"), (500, "5.90", "r")),
        words(160, (330, "Carried forward"), (500, "72.77", "r")),
        words(400, (40, "Page 1 of 2")),
    )
    second = page(
        words(20, (40, "Invoice 4711, page 2")),
        words(60, (40, "Description"), (300, "Qty", "r"), (400, "Price", "r"), (500, "Amount", "r")),
        words(80, (40, "Sprinkler"), (300, "3", "r"), (400, "12.00", "r"), (500, "36.00", "r")),
        words(95, (40, "Tap connector"), (300, "4", "r"), (400, "2.50", "r"), (500, "10.00", "r")),
        words(130, (330, "Total"), (500, "118.77", "r")),
    )
    invoice = read(first, second)
    assert lines(invoice) == [
        ("Garden hose 20 m", D(2), D("19.90"), D("39.80")),
        ("Hose reel", D(1), D("34.50"), D("34.50")),
        ("Sprinkler", D(3), D("12.00"), D("36.00")),
        ("Tap connector", D(4), D("2.50"), D("10.00")),
    ]


# ---- a date or shipment column beside the description --------------------------------------------------------


def test_a_date_or_shipment_column_is_not_part_of_the_description():
    invoice = read(
        page(
            HEAD,
            words(60, (40, "Date"), (110, "Description"), (360, "Qty", "r"), (420, "Price", "r"), (500, "Total", "r")),
            words(
                80, (40, "03/11/2025"), (110, "Consultation"), (360, "1", "r"), (420, "50.00", "r"), (500, "50.00", "r")
            ),
            words(
                95,
                (40, "17/11/2025"),
                (110, "Follow-up visit"),
                (360, "2", "r"),
                (420, "25.00", "r"),
                (500, "50.00", "r"),
            ),
            words(125, (40, "Delivery note"), (110, "DN-20931 of 12.11.2025")),
            words(140, (330, "Total"), (500, "100.00", "r")),
        )
    )
    assert lines(invoice) == [
        ("Consultation", D(1), D("50.00"), D("50.00")),
        ("Follow-up visit", D(2), D("25.00"), D("50.00")),
    ]


# ---- price per 100 or 1,000 units, line discounts ----------------------------------------------------------


def test_a_price_per_hundred_units_and_a_line_discount():
    invoice = read(
        page(
            HEAD,
            words(
                60,
                (40, "Description"),
                (300, "Qty", "r"),
                (380, "Price", "r"),
                (430, "per", "r"),
                (470, "Disc.", "r"),
                (540, "Amount", "r"),
            ),
            words(
                80, (40, "Screws 4 x 30"), (300, "500", "r"), (380, "3.20", "r"), (430, "100", "r"), (540, "16.00", "r")
            ),
            words(
                95, (40, "Wall plugs"), (300, "2000", "r"), (380, "9.50", "r"), (430, "1000", "r"), (540, "19.00", "r")
            ),
            words(
                110,
                (40, "Drill bit set"),
                (300, "2", "r"),
                (380, "15.00", "r"),
                (470, "10 %", "r"),
                (540, "27.00", "r"),
            ),
            words(140, (330, "Total"), (540, "62.00", "r")),
        )
    )
    assert [(i.description, i.quantity, i.line_total) for i in invoice.items] == [
        ("Screws 4 x 30", D(500), D("16.00")),
        ("Wall plugs", D(2000), D("19.00")),
        ("Drill bit set", D(2), D("27.00")),
    ]
    # the price as printed (per 100, per 1,000): the basis column is on none of the anchors' columns
    assert [i.unit_price for i in invoice.items] == [D("3.20"), D("9.50"), D("15.00")]


# ---- grouped items with a subtotal line; credit notes -------------------------------------------------------


def test_grouped_items_with_a_subtotal_line_per_group():
    invoice = read(
        page(
            HEAD,
            words(60, (40, "Description"), (300, "Qty", "r"), (400, "Price", "r"), (500, "Amount", "r")),
            words(75, (40, "Kitchen")),
            words(90, (40, "Worktop oak"), (300, "2", "r"), (400, "120.00", "r"), (500, "240.00", "r")),
            words(105, (40, "Sink unit"), (300, "1", "r"), (400, "310.00", "r"), (500, "310.00", "r")),
            words(120, (40, "Subtotal Kitchen"), (500, "550.00", "r")),
            words(140, (40, "Bathroom")),
            words(155, (40, "Towel rail"), (300, "1", "r"), (400, "89.00", "r"), (500, "89.00", "r")),
            words(170, (40, "Subtotal Bathroom"), (500, "89.00", "r")),
            words(200, (330, "Total"), (500, "639.00", "r")),
        )
    )
    assert lines(invoice) == [
        ("Worktop oak", D(2), D("120.00"), D("240.00")),
        ("Sink unit", D(1), D("310.00"), D("310.00")),
        ("Towel rail", D(1), D("89.00"), D("89.00")),
    ]
    assert invoice.printed_total == D("639.00")


def test_a_credit_note_with_negative_amounts():
    invoice = read(
        page(
            words(20, (40, "CREDIT NOTE 2025-031")),
            words(60, (40, "Description"), (300, "Qty", "r"), (400, "Price", "r"), (500, "Amount", "r")),
            words(80, (40, "Returned monitor"), (300, "-1", "r"), (400, "149.00", "r"), (500, "-149.00", "r")),
            words(95, (40, "Returned cable"), (300, "-2", "r"), (400, "4.50", "r"), (500, "-9.00", "r")),
            words(130, (330, "Total"), (500, "-158.00", "r")),
        )
    )
    assert lines(invoice) == [
        ("Returned monitor", D(-1), D("149.00"), D("-149.00")),
        ("Returned cable", D(-2), D("4.50"), D("-9.00")),
    ]
    assert invoice.printed_total == D("-158.00")


# ---- receipts: a tax-class letter glued to the amount --------------------------------------------------------


def test_a_receipt_amount_with_a_tax_class_letter_attached():
    invoice = read(
        page(
            words(20, (40, "Market Hall 12")),
            words(60, (40, "BREAD ROLLS"), (300, "0,29A", "r")),
            words(75, (40, "CARROT SALAD"), (300, "1,19 A", "r")),
            words(90, (40, "CHICKEN CURRY"), (300, "3,99 B", "r")),
            words(110, (40, "SUMME EUR"), (300, "5,47", "r")),
        )
    )
    assert [(i.description, i.line_total) for i in invoice.items] == [
        ("BREAD ROLLS", D("0.29")),
        ("CARROT SALAD", D("1.19")),
        ("CHICKEN CURRY", D("3.99")),
    ]
