"""Input rules shared by every decider: ids, currencies, quantities and prices.

Everything here is pure: a value is either accepted or a ValidationError names the rule it broke.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 64
MAX_LINES_PER_ORDER = 50
MAX_QUANTITY_PER_LINE = 10_000
MAX_RESTOCK_QUANTITY = 1_000_000  # units of one SKU added by one restock
MAX_UNIT_PRICE_MINOR = 100_000_000  # one million in major units, for two-decimal currencies
MAX_REASON_LENGTH = 500
MAX_VERSION = 2**63 - 1  # an Avro long: expected_version travels as one
MAX_NUMBER_DIGITS = 30  # longer is past every limit here (and int() refuses strings of over 4300 digits)

_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: str.isdigit() and int() also take '²' or '٣'

# Active ISO 4217 alphabetic codes (funds and precious-metal codes left out on purpose: orders are not paid in gold).
ISO_4217_CURRENCIES = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XCG",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    ]
)


class ValidationError(ValueError):
    """An input broke a domain rule; the message says which rule and how to fix it."""


def check_id(kind: str, value: str) -> str:
    """Accept an id of 1..64 characters: letters, digits and . _ : - (starting with a letter or digit)."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{kind} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"{kind} is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    if not _ID_PATTERN.fullmatch(value):
        raise ValidationError(
            f"{kind} {value!r} has characters outside letters, digits and . _ : - (or does not start with one)"
        )
    return value


class NotParsable(ValidationError):
    """The text is not of the kind asked for at all (not a number, not an amount): a usage error, not a refused
    value. The CLI exits 2 for it, as for any other argument of the wrong type."""


def parse_whole_number(what: str, text: str) -> int:
    """Read a whole number as typed: an optional sign, then the digits 0-9 and nothing else.

    str.isdigit() accepts '²' (which int() then refuses with a traceback) and int() accepts '٣' (Arabic-Indic 3) or
    ' 1_000': what a person typed must be what the system reads, so both are refused here, with one message.
    """
    cleaned = text.strip()
    if not _WHOLE_NUMBER.fullmatch(cleaned):
        raise NotParsable(f"{what} is not a whole number: {text!r} (write it with the digits 0-9, e.g. 3)")
    digits = len(cleaned.lstrip("+-").lstrip("0"))
    if digits > MAX_NUMBER_DIGITS:  # not echoed: it may be thousands of characters long
        raise ValidationError(f"{what} is far too large: a number of {digits} digits")
    return int(cleaned)


def check_version(what: str, version: int) -> int:
    """Accept an aggregate version as a command names it: 0..MAX_VERSION (it travels as an Avro long)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValidationError(f"{what} must be a whole number")
    if version < 0:
        raise ValidationError(f"{what} must be 0 or more, got {version}")
    if version > MAX_VERSION:
        raise ValidationError(
            f"{what} {version} is too large: no version is above {MAX_VERSION} "
            "(`orderstream query order ID` shows an order's current version)"
        )
    return version


def check_currency(code: str) -> str:
    if code not in ISO_4217_CURRENCIES:
        raise ValidationError(f"currency {code!r} is not an ISO 4217 code (use e.g. EUR, USD, GBP)")
    return code


def check_quantity(sku: str, quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationError(f"quantity of {sku} must be a whole number")
    if quantity <= 0:
        raise ValidationError(f"quantity of {sku} must be greater than 0, got {quantity}")
    if quantity > MAX_QUANTITY_PER_LINE:
        raise ValidationError(f"quantity of {sku} is {quantity}; the limit per line is {MAX_QUANTITY_PER_LINE}")
    return quantity


def check_stock_quantity(sku: str, quantity: int) -> int:
    """Accept a restock quantity: a whole number of units, 1..MAX_RESTOCK_QUANTITY."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationError(f"quantity of {sku} must be a whole number")
    if quantity <= 0:
        raise ValidationError(f"quantity of {sku} must be greater than 0, got {quantity}")
    if quantity > MAX_RESTOCK_QUANTITY:
        raise ValidationError(f"quantity of {sku} is {quantity}; the limit per restock is {MAX_RESTOCK_QUANTITY}")
    return quantity


def check_unit_price(sku: str, unit_price_minor: int) -> int:
    if isinstance(unit_price_minor, bool) or not isinstance(unit_price_minor, int):
        raise ValidationError(f"price of {sku} must be a whole number of minor units (cents)")
    if unit_price_minor < 0:
        raise ValidationError(f"price of {sku} must be 0 or more, got {unit_price_minor}")
    if unit_price_minor > MAX_UNIT_PRICE_MINOR:
        raise ValidationError(f"price of {sku} is {unit_price_minor}; the limit is {MAX_UNIT_PRICE_MINOR} minor units")
    return unit_price_minor


def check_reason(reason: str) -> str:
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationError(f"reason is {len(reason)} characters long; the limit is {MAX_REASON_LENGTH}")
    return reason
