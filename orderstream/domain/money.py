"""Money as people type it ("12.50 EUR") and as the system keeps it (1250 minor units). Pure, no floats.

The number of minor units per major unit comes from ISO 4217: most currencies have 2 decimals, a few 0 or 3.
"""

from __future__ import annotations

import re
from decimal import Decimal

from orderstream.domain.validation import NotParsable, ValidationError, check_currency

_ZERO_DECIMALS = frozenset(
    ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]
)
_THREE_DECIMALS = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])

# A plain decimal: digits 0-9 and at most one point. Decimal() also takes '1e999999' (whose scaling overflows),
# 'Infinity', '1_000' and digits of other scripts; none of that is how anyone writes a price.
_PLAIN_DECIMAL = re.compile(r"(?P<sign>-?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?")
_MAX_WHOLE_DIGITS = 18  # more is past any limit on an amount (and past what a long holds in minor units)


def decimals_of(currency: str) -> int:
    """How many decimals the currency's minor unit has (ISO 4217 exponent)."""
    check_currency(currency)
    if currency in _ZERO_DECIMALS:
        return 0
    if currency in _THREE_DECIMALS:
        return 3
    return 2


def to_minor(amount: str, currency: str, *, what: str = "price", limit_minor: int | None = None) -> int:
    """'12.5' EUR -> 1250. Accepts plain decimals only (e.g. 19.99); rejects negative amounts, more decimals than the
    currency has and, given limit_minor, amounts above it. Every message speaks in major units, as the amount was
    typed: "9999999999900 minor units" means nothing to whoever wrote 99999999999.

    Exact integer arithmetic on the digits: no Decimal context, so no rounding and no overflow.
    """
    text = amount.strip() if isinstance(amount, str) else ""
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None or not (match["whole"] or match["fraction"]):
        raise NotParsable(
            f"{what} {amount!r} is not a number written like 12.50 (digits 0-9 and at most one '.', no exponent)"
        )
    decimals = decimals_of(currency)
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > decimals:
        raise ValidationError(f"{what} {amount!r} has more than {decimals} decimals, the most {currency} allows")
    whole = match["whole"].lstrip("0")
    if len(whole) > _MAX_WHOLE_DIGITS:
        raise ValidationError(_too_large(what, f"a number of {len(whole)} digits", currency, limit_minor))
    minor = int(whole or "0") * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    if match["sign"] and minor:
        raise ValidationError(f"{what} must be 0 or more, got {text} {currency}")
    if limit_minor is not None and minor > limit_minor:
        raise ValidationError(_too_large(what, f"{text} {currency}", currency, limit_minor))
    return minor


def _too_large(what: str, amount: str, currency: str, limit_minor: int | None) -> str:
    if limit_minor is None:
        return f"{what} is far too large: {amount}"
    return f"{what} is {amount}; the limit is {format_minor(limit_minor, currency)}"


def format_minor(amount_minor: int, currency: str) -> str:
    """1250, EUR -> '12.50 EUR'."""
    decimals = decimals_of(currency)
    value = Decimal(amount_minor).scaleb(-decimals)
    return f"{value:.{decimals}f} {currency}"
