"""`ship` / `deliver` refuse bad input before touching Kafka: exit 1, one line on stderr, nothing on stdout."""

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
        (["ship", "o 1"], "order id"),
        (["ship", "o-1", "--carrier", ""], "carrier must not be empty"),
        (["ship", "o-1", "--carrier", "D H L"], "carrier"),
        (["ship", "o-1", "--tracking", "x" * 65], "tracking number is 65 characters long"),
        (["deliver", "o/1"], "order id"),
        (["deliver", "x" * 65, "--wait"], "limit is 64"),
    ],
)
def test_bad_input_fails_with_one_line(args, fragment):
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
