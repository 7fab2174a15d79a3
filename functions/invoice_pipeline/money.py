"""Currency precision and the digits invoices are printed with: shared by validation, accuracy and extractors.

Amounts are compared at the precision of their currency: three decimals for the Gulf and North African
currencies whose minor unit is the fils or millime, none for currencies without a minor unit in use, two for
every other code (and for an unknown or missing one).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 (list one, 2026): the circulating currencies (fund codes, precious metals, bond-market units and the
# test and "no currency" codes left out), plus codes withdrawn since 2016 that older invoices still print.
_ISO_4217 = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP
CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG
HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
ANG BGN BYR CUC HRK MRO SLL STD VEF ZWL
"""
ISO_4217_CODES = frozenset(_ISO_4217.split())
THREE_DECIMAL_CURRENCIES = frozenset({"KWD", "BHD", "OMR", "JOD", "TND", "LYD", "IQD"})
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG", "RWF"})

# Arabic-Indic (U+0660..) and Extended Arabic-Indic / Persian (U+06F0..) digits, and the Arabic decimal and
# thousands separators, mapped to their ASCII forms.
_DIGITS = {0x0660 + n: str(n) for n in range(10)} | {0x06F0 + n: str(n) for n in range(10)}
_TO_ASCII = str.maketrans(_DIGITS | {0x066B: ".", 0x066C: ","})
_AMOUNT = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")


def currency_decimals(currency: str | None) -> int:
    """Decimal places of ``currency`` (ISO 4217); 2 when unknown or missing."""
    code = (currency or "").strip().upper()
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    return 2


def currency_code(text: str | None) -> str | None:
    """``text`` as an ISO 4217 code (``" kwd "`` -> ``"KWD"``), or None when it is not one."""
    code = (text or "").strip().upper()
    return code if code in ISO_4217_CODES else None


def quantum(decimals: int) -> Decimal:
    """One unit of the last place: ``Decimal('0.001')`` for 3 decimals, ``Decimal('1')`` for 0."""
    return Decimal(1).scaleb(-decimals)


def round_money(value: Decimal, decimals: int) -> Decimal:
    """Round half-up to ``decimals`` places, the way invoices print amounts."""
    return value.quantize(quantum(decimals), rounding=ROUND_HALF_UP)


def ascii_digits(text: str) -> str:
    """``text`` with Arabic-Indic digits and separators replaced by ASCII ones."""
    return text.translate(_TO_ASCII)


def parse_amount(text: str | None) -> Decimal | None:
    """A printed number (``"1,250.000"``, ``"١٢.٥٠٠"``, ``"12"``) as a Decimal; None when it is not one.

    Thousands separators are accepted only in groups of three, so ``"1,5"`` is not read as 15.
    """
    if text is None:
        return None
    cleaned = ascii_digits(text).strip().replace(" ", "").replace("\u00a0", "")
    if not _AMOUNT.match(cleaned):
        return None
    try:
        return Decimal(cleaned.replace(",", ""))
    except InvalidOperation:
        return None
