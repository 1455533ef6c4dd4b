"""`place` / `cancel` refuse bad input before touching Kafka: one line on stderr, nothing on stdout; exit 2 for a value
that is not of its kind (not SKU:QTY:PRICE, not a number), 1 for a well-formed value refused."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.domain.money import format_minor, to_minor
from orderstream.domain.validation import ValidationError

runner = CliRunner()
# an address nothing listens on: reaching Kafka at all would hang or fail differently
BASE = ["--bootstrap-servers", "127.0.0.1:1", "--topic-prefix", "unit."]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["place", "--customer", "c1", "--item", "A:1"], "not SKU:QTY:PRICE"),
        (["place", "--customer", "c1", "--item", "A:x:1.00"], "not a whole number"),
        (["place", "--customer", "c1", "--item", "A:0:1.00"], "greater than 0"),
        (["place", "--customer", "c1", "--item", "A:1:-1"], "0 or more"),
        (["place", "--customer", "c1", "--item", "A:1:1.001"], "more than 2 decimals"),
        (["place", "--customer", "c1", "--item", "A:1:abc"], "not a number"),
        (["place", "--customer", "c1", "--item", "A:1:1", "--currency", "EURO"], "ISO 4217"),
        (["place", "--customer", "c 1", "--item", "A:1:1"], "customer id"),
        (["place", "--customer", "c1", "--item", "A:1:1", "--item", "A:2:1"], "two lines"),
        (["place", "--customer", "c1", "--item", "A:1:1", "--order-id", "x" * 65], "limit is 64"),
        (["cancel", "o-1", "--expected-version", "-1"], "0 or more"),
        (["cancel", "o 1"], "order id"),
    ],
)
def test_bad_input_fails_with_one_line(args, fragment):
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == (2 if fragment in ("not SKU:QTY:PRICE", "not a whole number", "not a number") else 1)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_prices_are_read_in_the_currencys_minor_units():
    assert to_minor("12.5", "EUR") == 1250
    assert to_minor("1200", "JPY") == 1200
    assert to_minor("1.234", "KWD") == 1234
    assert format_minor(1250, "EUR") == "12.50 EUR"
    with pytest.raises(ValidationError):
        to_minor("1.5", "JPY")
    with pytest.raises(ValidationError):
        to_minor("nan", "EUR")
