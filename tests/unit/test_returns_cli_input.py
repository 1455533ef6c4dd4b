"""`return` refuses bad input before touching Kafka: exit 1, one line on stderr, nothing on stdout."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app

runner = CliRunner()
# an address nothing listens on: reaching Kafka at all would hang or fail differently
BASE = ["--bootstrap-servers", "127.0.0.1:1", "--topic-prefix", "unit."]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["return", "o 1"], "order id"),
        (["return", "o-1", "--item", "A"], "is not SKU:QTY"),
        (["return", "o-1", "--item", "A:x"], "quantity of A is not a whole number"),
        (["return", "o-1", "--item", "A:0"], "A"),
        (["return", "o-1", "--item", "A:1", "--item", "A:2"], "appears twice"),
        (["return", "o-1", "--item", "A B:1"], "sku"),
        (["return", "o-1", "--reason", "x" * 501, "--wait"], "reason"),
    ],
)
def test_bad_input_fails_with_one_line(args, fragment):
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_the_return_command_is_listed_with_its_options():
    result = runner.invoke(app, ["return", "--help"])
    assert result.exit_code == 0
    for option in ("--item", "--reason", "--no-restock", "--wait", "--json"):
        assert option in result.stdout
