"""`replay projection|topic` refuse bad input with one line on stderr, before touching Kafka or a database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.producers.topic_copy import CopyFilter


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "projection", "order-view"], "choose one of --from-beginning or --from-time TIME"),
        (["replay", "projection", "order-view", "--from-beginning", "--from-time", "2024-01-01"], "choose one of"),
        (["replay", "projection", "order-view", "--from-time", "soon"], "--from-time 'soon' is not an ISO 8601 time"),
        (["replay", "projection", "nope-view", "--from-beginning"], "unknown projection 'nope-view'"),
        (
            ["replay", "topic", "a", "--to", "b", "--from-time", "2024-02-01", "--until", "2024-01-01"],
            "--until must be after",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr(args, message):
    result = CliRunner().invoke(app, ["--bootstrap-servers", "127.0.0.1:1", *args])
    assert result.exit_code == (1 if message.startswith("--until") else 2), result.output  # 2: a usage error
    assert message in result.output
    assert result.output.count("\n") == 1


def test_the_copy_filter_is_half_open_and_matches_type_names():
    f = CopyFilter(from_ms=10, until_ms=20, event_type="OrderPlaced")
    placed = [("ce_type", b"orderstream.orders.OrderPlaced.v1")]
    assert f.matches(10, placed) and f.matches(19, placed)
    assert not f.matches(9, placed) and not f.matches(20, placed)
    assert not f.matches(15, [("ce_type", b"orderstream.orders.OrderConfirmed.v1")]) and not f.matches(15, None)
    assert CopyFilter(event_type="orderstream.orders.OrderPlaced.v1").matches(0, placed)
    assert CopyFilter().fingerprint() != f.fingerprint()
