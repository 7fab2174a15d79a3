"""The layout-free table reader on word boxes (no OCR run): layouts it was not tuned on, in several languages."""

from decimal import Decimal

import pytest

from invoice_pipeline.reading.invoice_reader import reconstruct_pages
from invoice_pipeline.reading.table_reader import build_lines, is_summary, read_items
from tests.unit.word_boxes import page, words

D = Decimal


def test_a_german_table_without_header_words_is_read_from_its_arithmetic():
    invoice = read_items(
        [
            page(
                words(20, (40, "Muster GmbH, Lindenweg 4, 80333 München")),
                words(40, (40, "Rechnung 2024-118 vom 05.03.2024")),
                # position, article, description, quantity, unit, price, total, then a VAT column
                words(
                    100,
                    (40, "1"),
                    (60, "A-100"),
                    (120, "Kaffee Arabica 1 kg"),
                    (330, "12", "r"),
                    (340, "Stk."),
                    (440, "14,90", "r"),
                    (520, "178,80", "r"),
                    (560, "19 %", "r"),
                ),
                words(112, (120, "aus fairem Handel")),
                words(
                    130,
                    (40, "2"),
                    (60, "B-7"),
                    (120, "Filtertüten Größe 4"),
                    (330, "1.200", "r"),
                    (340, "Stk."),
                    (440, "0,05", "r"),
                    (520, "60,00", "r"),
                    (560, "19 %", "r"),
                ),
                words(160, (120, "Summe netto"), (520, "238,80", "r")),
                words(172, (120, "MwSt. 19 %"), (520, "45,37", "r")),
                words(184, (120, "Gesamtbetrag"), (520, "284,17", "r")),
            )
        ]
    )
    assert [(i.description, i.quantity, i.unit, i.unit_price, i.line_total) for i in invoice.items] == [
        ("A-100 Kaffee Arabica 1 kg aus fairem Handel", D(12), "Stk", D("14.90"), D("178.80")),
        ("B-7 Filtertüten Größe 4", D(1200), "Stk", D("0.05"), D("60.00")),
    ]
    assert invoice.printed_total == D("238.80")  # the summary amount the lines add up to


def test_french_spaces_in_thousands_and_a_line_discount():
    invoice = read_items(
        [
            page(
                words(50, (40, "Désignation"), (300, "Qté"), (360, "Prix unitaire"), (450, "Rem."), (520, "Total HT")),
                words(
                    70,
                    (40, "Huile d'olive 1 l"),
                    (320, "100", "r"),
                    (420, "19,80 €", "r"),
                    (480, "10 %", "r"),
                    (560, "1 782,00 €", "r"),
                ),
                words(85, (40, "Nougat 250 g"), (320, "20", "r"), (420, "4,55 €", "r"), (560, "91,00 €", "r")),
                words(110, (360, "Total HT"), (560, "1 873,00 €", "r")),
                words(122, (360, "TVA 5,5 %"), (560, "103,02 €", "r")),
            )
        ]
    )
    assert [(i.description, i.quantity, i.unit_price, i.line_total) for i in invoice.items] == [
        ("Huile d'olive 1 l", D(100), D("19.80"), D("1782.00")),
        ("Nougat 250 g", D(20), D("4.55"), D("91.00")),
    ]
    assert invoice.currency == "EUR"


def test_an_english_table_with_the_unit_price_left_of_the_quantity_and_arabic_summary_rows():
    invoice = read_items(
        [
            page(
                words(60, (40, "Basmati rice 5 kg"), (300, "7.250", "r"), (360, "4", "r"), (460, "29.000", "r")),
                words(75, (40, "Saffron 10 g"), (300, "12.500", "r"), (360, "2", "r"), (460, "25.000", "r")),
                words(100, (40, "المجموع الفرعي"), (460, "54.000", "r")),
                words(115, (40, "الإجمالي KWD"), (460, "54.000", "r")),
            )
        ]
    )
    assert [(i.description, i.quantity, i.unit_price, i.line_total) for i in invoice.items] == [
        ("Basmati rice 5 kg", D(4), D("7.250"), D("29.000")),
        ("Saffron 10 g", D(2), D("12.500"), D("25.000")),
    ]
    assert invoice.currency == "KWD"


def test_a_table_continued_on_the_next_page_and_a_total_printed_half_a_line_lower():
    first = page(
        words(700, (40, "1"), (120, "Miettage"), (380, "86,5500", "r"), (420, "2", "r"), (470, "19 %", "r")),
        words(708, (540, "173,10", "r")),
        words(760, (120, "Übertrag"), (540, "173,10", "r")),
    )
    second = page(
        words(40, (120, "Übertrag"), (540, "173,10", "r")),
        words(80, (40, "2"), (120, "Vollkasko"), (380, "23,1000", "r"), (420, "2", "r"), (470, "19 %", "r")),
        words(88, (540, "46,20", "r")),
        words(120, (120, "Summe"), (540, "219,30", "r")),
    )
    invoice = read_items([first, second])
    assert [(i.description, i.quantity, i.unit_price, i.line_total) for i in invoice.items] == [
        ("Miettage", D(2), D("86.5500"), D("173.10")),
        ("Vollkasko", D(2), D("23.1000"), D("46.20")),
    ]


def test_a_receipt_whose_items_add_up_to_the_printed_total():
    invoice = read_items(
        [
            page(
                words(10, (40, "ALDI SÜD"), (200, "Filiale 123")),
                words(22, (40, "Tel. 0800 1234567")),
                words(40, (40, "Milch 1,5%"), (220, "0,89", "r"), (230, "A")),
                words(52, (40, "Bananen"), (220, "1,78", "r"), (230, "A")),
                words(64, (50, "2 x 0,89")),
                words(76, (40, "Pfand"), (220, "0,25", "r"), (230, "B")),
                words(100, (40, "SUMME"), (220, "2,92", "r")),
                words(112, (40, "Bar"), (220, "5,00", "r")),
                words(124, (40, "Rückgeld"), (220, "2,08", "r")),
            )
        ]
    )
    assert [(i.description, i.quantity, i.unit_price, i.line_total) for i in invoice.items] == [
        ("Milch 1,5%", None, None, D("0.89")),
        ("Bananen", D(2), D("0.89"), D("1.78")),
        ("Pfand", None, None, D("0.25")),
    ]
    assert invoice.printed_total == D("2.92")


def test_the_reader_that_explains_more_of_the_arithmetic_wins_over_the_header_reader():
    # no header words at all: the header reader finds nothing, the layout-free one both lines
    rows = page(
        words(100, (40, "Trennblätter A4"), (330, "20", "r"), (440, "9,90", "r"), (520, "198,00", "r")),
        words(130, (40, "Joghurt Banane"), (330, "50", "r"), (440, "5,50", "r"), (520, "275,00", "r")),
        words(160, (40, "Rechnungssumme Netto"), (520, "473,00", "r")),
    )
    invoice = reconstruct_pages([rows])
    assert [(i.description, i.line_total) for i in invoice.items] == [
        ("Trennblätter A4", D("198.00")),
        ("Joghurt Banane", D("275.00")),
    ]


def test_header_titles_tell_quantity_from_price_when_both_have_decimals():
    # price left of quantity, both with decimals: no row says which is which, the titles do
    invoice = read_items(
        [
            page(
                words(80, (40, "Item"), (250, "Unit Price"), (330, "Qty"), (440, "Amount")),
                words(100, (40, "Copper pipe 15 mm"), (300, "12.50", "r"), (360, "2.00", "r"), (480, "25.00", "r")),
                words(112, (40, "Solder 250 g"), (300, "8.40", "r"), (360, "1.50", "r"), (480, "12.60", "r")),
                words(140, (250, "Total"), (480, "37.60", "r")),
            )
        ]
    )
    assert [(i.quantity, i.unit_price) for i in invoice.items] == [(D("2.00"), D("12.50")), (D("1.50"), D("8.40"))]


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        ("Solder 250 g", False),
        ("Balance Brot", False),
        ("Ökosteuer Lieferant", False),
        ("Solde à payer", True),
        ("Taxes", True),
        ("Gesamtbeitrag", True),
        ("Versandkosten", True),
        ("Positionssumme", True),
        ("المجموع", True),
    ],
)
def test_summary_rows_are_told_by_their_first_words(text, summary):
    (line,) = build_lines([page(words(10, (40, text), (400, "12,00", "r")))])
    assert is_summary(line) is summary
