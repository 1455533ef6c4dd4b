"""One rule for every command's exit code: 2 for a usage error (the command line does not parse, or a value is not of
its parameter's kind: not a number, a time, a token, one of the choices), 1 for a well-formed value that is refused.

No broker: every case is decided before anything reaches for Kafka or a database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app

runner = CliRunner()
BASE = ["--bootstrap-servers", "127.0.0.1:1", "--topic-prefix", "unit."]
PLACE = ["place", "--customer", "c-1", "--item", "A:1:1.00"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        # not of its kind: exit 2
        (["query", "orders", "--limit", "abc"], 2),
        (["generate", "--orders", "many"], 2),
        (["status", "--sample", "soon"], 2),
        (["cancel", "o-1", "--expected-version", "x"], 2),
        (["stock", "add", "SKU-1", "x"], 2),
        (["place", "--customer", "c-1", "--item", "A:1"], 2),
        ([*PLACE, "--wait-for", "maybe"], 2),
        (["query", "sales", "--by", "week"], 2),
        (["query", "orders", "--status", "LOST"], 2),
        (["query", "orders", "--sort", "colour"], 2),
        (["query", "orders", "--since", "yesterday"], 2),
        (["query", "order", "o-1", "--after", "not-a-token"], 2),
        (["replay", "projection", "nope-view", "--from-beginning"], 2),
        (["run", "nope"], 2),
        (["run", "projections", "--view", "nope-view"], 2),
        (["run", "order", "--view", "order-view"], 2),
        (["place", "--customer", "c-1"], 2),  # a required option missing
        (["no-such-command"], 2),
        # well-formed but refused: exit 1
        (["query", "orders", "--limit", "0"], 1),
        (["generate", "--orders", "0"], 1),
        (["generate", "--orders", "5", "--cancel-ratio", "2"], 1),
        (["status", "--sample", "-1"], 1),
        (["cancel", "o-1", "--expected-version", "-1"], 1),
        (["stock", "add", "SKU-1", "0"], 1),
        (["place", "--customer", "c-1", "--item", "A:0:1.00"], 1),
        ([*PLACE, "--currency", "XYZ"], 1),
    ],
)
def test_exit_codes_follow_one_rule(args, code, tmp_path):
    result = runner.invoke(app, [*BASE, "--data-dir", str(tmp_path), *args])
    assert result.exit_code == code, (args, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
