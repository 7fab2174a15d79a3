"""The words the readers know: column titles, summary and total words, currency symbols (one table each).

Both table readers (``header_reader`` and ``table_reader``) read the same words from here; currency codes are
:data:`invoice_pipeline.reading.money.ISO_4217_CODES`, the one list. Words are lower case; a row's text is compared by
:func:`starts_summary` (by prefix and whole words, German compounds by part, Arabic by substring).
"""

from __future__ import annotations

import functools
import re

from invoice_pipeline.reading.money import ISO_4217_CODES

# Column titles by the field they head ("number" columns, #/Pos., are recognised and ignored), in English,
# German, French and Arabic. A header cell is one of these phrases; a header row holds several of their words.
COLUMN_TITLES: dict[str, tuple[str, ...]] = {
    "description": (
        *("description", "item description", "item", "items", "product", "product name", "details", "particulars"),
        *("article", "goods", "item name", "service", "services", "artikel", "bezeichnung", "beschreibung"),
        *("artikelbeschreibung", "artikelbezeichnung", "leistung", "désignation", "designation", "libellé"),
        *("produit", "الوصف", "البند"),
    ),
    "quantity": ("qty", "quantity", "qnty", "qty.", "q'ty", "quan", "menge", "anzahl", "quantité", "qté", "الكمية"),
    "unit": ("unit", "uom", "u/m", "unit of measure", "measure", "units", "einheit", "me", "unité", "الوحدة"),
    "unit_price": (
        *("price", "unit price", "rate", "unit cost", "price/unit", "u.price", "unit rate", "cost", "each"),
        *("preis", "einzelpreis", "nettopreis", "stückpreis", "prix", "prix unitaire", "p.u.", "pu", "السعر"),
    ),
    "line_total": (
        *("total", "amount", "line total", "net amount", "value", "ext price", "extended", "net", "sum"),
        *("betrag", "gesamtpreis", "gesamt", "montant", "total ht", "المبلغ", "الإجمالي"),
    ),
    "number": ("#", "no", "no.", "sr", "sr.", "s/n", "sl", "line", "pos", "pos.", "nr", "nr."),
    # a date or shipment column: read, and left out of the item
    "date": ("date", "datum", "delivery date", "service date", "lieferdatum", "leistungsdatum", "date de livraison"),
}
# Columns a header reader recognises and leaves out of the item
IGNORED_COLUMNS = ("number", "date")
# Single words of the titles (a header row of the layout-free reader holds two or more of these).
TITLE_WORDS = frozenset(
    word
    for role, phrases in COLUMN_TITLES.items()
    if role not in IGNORED_COLUMNS
    for phrase in phrases
    for word in phrase.split()
) | {"pos", "pos.", "référence"}

# Words that start a summary row: totals, taxes, shipping, discounts, payment (receipts), and a unit price printed
# on a row of its own under its item. A row's first word is compared by prefix, whole words, plurals allowed.
SUMMARY_WORDS = (
    *("total", "subtotal", "sub total", "sub-total", "grand", "vat", "tax", "shipping", "freight", "amount due"),
    *("net total", "net amount", "net value", "gross", "invoice total"),
    *("amount", "balance due", "discount", "less", "summe", "zwischensumme", "gesamt"),
    *("rechnungssumme", "rechnungsbetrag", "nettobetrag", "bruttobetrag", "netto", "brutto", "mwst", "ust"),
    *("umsatzsteuer", "mehrwertsteuer", "steuer", "endbetrag", "zahlbetrag", "zu zahlen", "übertrag"),
    *("uebertrag", "versand", "fracht", "skonto", "rabatt", "abzgl", "abzüglich", "sous-total", "tva", "montant"),
    *("net à payer", "solde", "taxe", "frais de port", "remise", "acompte", "bar", "gegeben", "rückgeld"),
    *("ec-karte", "kartenzahlung", "geg.", "visa", "mastercard", "change"),
    *("einzelpreis", "stückpreis", "unit price", "prix unitaire"),
)
# German compounds start with these ("Gesamtbetrag", "Bruttopreis", "Steuerbasisbetrag", "Versandkosten");
# every other summary word must end where a word ends ("Solde", "Taxes", not "Solder")
COMPOUND_PREFIXES = (
    *("gesamt", "netto", "brutto", "steuer", "mwst", "versand", "rabatt", "zwischensumme", "umsatzsteuer"),
    *("mehrwertsteuer", "rechnungsbetrag", "nettobetrag", "bruttobetrag", "endbetrag", "zahlbetrag", "skonto"),
    *("fracht", "frais"),
)
# German compounds: "Positionssumme", "Gesamtbetrag", "Steuerbetrag"
SUMMARY_PARTS = ("summe", "gesamtbetrag", "zahlbetrag", "steuerbetrag", "endbetrag")
ARABIC_SUMMARY = ("المجموع", "الإجمالي", "اجمالي", "إجمالي", "ضريبة", "الضريبة", "المبلغ", "الصافي", "الخصم")
# A total of the whole document
GRAND_TOTAL_WORDS = (
    *("total", "grand", "amount due", "balance", "summe", "gesamt", "brutto", "rechnungsbetrag"),
    *("rechnungssumme brutto", "zu zahlen", "endbetrag", "zahlbetrag", "net à payer", "total ttc", "montant ttc"),
    *("المجموع", "الإجمالي", "اجمالي", "إجمالي"),
)
# Not a total of the document: subtotals, carried-forward amounts, and prices ("Bruttopreis: 1.000,00")
SUBTOTAL_WORDS = (
    *("zwischensumme", "subtotal", "sub-total", "sub total", "sous-total", "übertrag", "carried"),
    *("preis", "price", "prix"),
)
# Taxes: a tax row's amount is never the document's total
TAX_WORDS = ("vat", "tax", "mwst", "ust", "umsatzsteuer", "mehrwertsteuer", "steuer", "tva", "taxe", "ضريبة")
# Rows that hold the document's currency in words ("Currency: EUR", "Währung EUR")
CURRENCY_LABELS = ("currency", "währung", "devise", "monnaie")

CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW"}
CURRENCY_WORDS = {**CURRENCY_SYMBOLS, "fr.": "CHF"}
_SYMBOL = re.compile("[" + "".join(CURRENCY_SYMBOLS) + "]")
_CODE_AROUND = re.compile(r"^([A-Z]{3})\.?\s*(?=[-+(\d])|(?<=[\d)-])\s*([A-Z]{3})\.?$")


def currency_of(token: str) -> str | None:
    """The ISO code a printed token names: a code in capitals ("EUR", "EUR20.00", "(EUR)"), or a symbol
    ("€", "20,00€"); None otherwise. Lower-case words are not codes ("all", "top" are English words)."""
    for symbol, code in CURRENCY_SYMBOLS.items():
        if symbol in token:
            return code
    letters = token.strip(".,:;()[]/+-0123456789 \u00a0")
    if len(letters) == 3 and letters.isupper() and letters in ISO_4217_CODES:
        return letters
    return None


def is_currency_word(word: str) -> bool:
    """A word that only names a currency ("€", "EUR", "(EUR)", "fr."): not part of a description."""
    if word in CURRENCY_WORDS:
        return True
    return len(word) <= 6 and not any(c.isdigit() for c in word) and currency_of(word) is not None


def strip_currency(text: str) -> str:
    """A number cell's text without its currency: "€20.00", "20,00 €", "EUR 20.00" and "20.00EUR" -> the number."""
    cleaned = _SYMBOL.sub("", text).strip()
    match = _CODE_AROUND.search(cleaned)
    if match is not None and (match.group(1) or match.group(2)) in ISO_4217_CODES:
        cleaned = (cleaned[: match.start()] + cleaned[match.end() :]).strip()
    return cleaned


_LONGEST_FIRST = sorted(SUMMARY_WORDS, key=len, reverse=True)
_SUMMARY_WORD = re.compile("(?:" + "|".join(map(re.escape, _LONGEST_FIRST)) + r")(?:e?s)?(?![^\W\d_])")


@functools.lru_cache(maxsize=4096)
def starts_summary(first: str, text: str = "") -> bool:
    """Whether a row whose first words are ``first`` (lower case) is a summary row; ``text`` is the whole row
    (Arabic summary words are found anywhere in it)."""
    if not first:
        return False
    if any(word in (text or first) for word in ARABIC_SUMMARY):
        return True
    if any(part in first for part in SUMMARY_PARTS):
        return True
    if first.startswith(COMPOUND_PREFIXES):
        return True
    return _SUMMARY_WORD.match(first) is not None


def is_grand_total(text: str) -> bool:
    """A row (lower case) that names the total of the whole document, not a subtotal or a price."""
    if any(word in text for word in SUBTOTAL_WORDS):
        return False
    return any(word in text for word in GRAND_TOTAL_WORDS)


def is_tax(first: str) -> bool:
    """A row whose first words (lower case) name a tax."""
    return any(re.match(rf"{re.escape(word)}(?![^\W\d_])", first) for word in TAX_WORDS) or first.startswith(
        ("mwst", "umsatzsteuer", "mehrwertsteuer", "steuer")
    )
