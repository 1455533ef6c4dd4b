"""Money as people type it ("12.50 EUR") and as the system keeps it (1250 minor units). Pure, no floats.

The number of minor units per major unit comes from ISO 4217: most currencies have 2 decimals, a few 0 or 3.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from orderstream.domain.validation import ValidationError, check_currency

_ZERO_DECIMALS = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split())
_THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())


def decimals_of(currency: str) -> int:
    """How many decimals the currency's minor unit has (ISO 4217 exponent)."""
    check_currency(currency)
    if currency in _ZERO_DECIMALS:
        return 0
    if currency in _THREE_DECIMALS:
        return 3
    return 2


def to_minor(amount: str, currency: str) -> int:
    """'12.5' EUR -> 1250. Rejects negative amounts, non-numbers and more decimals than the currency has."""
    try:
        value = Decimal(amount.strip())
    except (InvalidOperation, AttributeError):
        raise ValidationError(f"price {amount!r} is not a number (write e.g. 12.50)") from None
    if not value.is_finite():
        raise ValidationError(f"price {amount!r} is not a number (write e.g. 12.50)")
    decimals = decimals_of(currency)
    minor = value.scaleb(decimals)
    if minor != minor.to_integral_value():
        raise ValidationError(f"price {amount!r} has more than {decimals} decimals, the most {currency} allows")
    return int(minor)


def format_minor(amount_minor: int, currency: str) -> str:
    """1250, EUR -> '12.50 EUR'."""
    decimals = decimals_of(currency)
    value = Decimal(amount_minor).scaleb(-decimals)
    return f"{value:.{decimals}f} {currency}"
