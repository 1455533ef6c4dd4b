"""How the console shows values: money in major units, ages, timestamps. Pure functions, registered as Jinja2
filters by pages.py."""

from __future__ import annotations

from orderstream.domain.money import format_minor
from orderstream.domain.validation import ValidationError


def money(amount_minor: int | None, currency: str | None) -> str:
    """1250, 'EUR' -> '12.50 EUR'; an amount without a (valid) currency is shown as minor units."""
    if amount_minor is None:
        return "-"
    try:
        return format_minor(int(amount_minor), currency or "")
    except ValidationError:
        return f"{amount_minor} (minor units)"


def age(seconds: float | None) -> str:
    """12.3 -> '12.3 s', 4000 -> '1 h 6 min'; None -> '-' (nothing applied yet)."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def when(text: str | None) -> str:
    """A view's UTC timestamp text ('2026-12-06T13:27:39.123456+00:00') as '2026-12-06 13:27:39 UTC'."""
    if not text:
        return "-"
    day, _, time = text.replace("Z", "+00:00").partition("T")
    return f"{day} {time[:8]} UTC" if time else day
