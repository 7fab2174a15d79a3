"""Currency codes and precision: shared by validation, accuracy and extractors (reading a printed number is
:mod:`invoice_pipeline.reading.numbers`).

Amounts are compared at the precision of their currency: three decimals for the Gulf and North African
currencies whose minor unit is the fils or millime, none for currencies without a minor unit in use, two for
every other code (and for an unknown or missing one).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

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
