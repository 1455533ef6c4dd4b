"""`orderstream place` / `cancel` against the real broker and a running order service, through typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.kafka.consistency import ConsistencyToken
from orderstream.topology import ORDERS_COMMANDS
from tests.support.orders import read_topic, running_order_service

runner = CliRunner()


def base(settings) -> list[str]:
    return [
        "-b",
        settings.effective_bootstrap,
        "--topic-prefix",
        settings.topic_prefix,
        "--data-dir",
        str(settings.data_dir),
    ]


def test_place_and_cancel_with_wait_and_json(topics):
    with running_order_service(topics):
        placed = runner.invoke(
            app,
            [
                *base(topics),
                "place",
                "--customer",
                "c-9",
                "--item",
                "BOOK-1:2:12.50",
                "--item",
                "PEN-2:1:0.99",
                "--order-id",
                "o-cli-1",
                "--wait",
                "--json",
            ],
        )
        assert placed.exit_code == 0, placed.stderr
        body = json.loads(placed.stdout)
        assert body["order_id"] == "o-cli-1" and body["accepted"] is True and body["version"] == 1
        assert body["reason"] is None and ConsistencyToken.parse(body["token"]).topic == "orders.events"

        text = runner.invoke(app, [*base(topics), "cancel", "o-cli-1", "--reason", "oops", "--wait"])
        assert text.exit_code == 0, text.stderr
        assert text.stdout.startswith("o-cli-1 accepted: version 2, token orders.events:")

        again = runner.invoke(app, [*base(topics), "cancel", "o-cli-1", "--wait", "--json"])
        assert again.exit_code == 1
        assert json.loads(again.stdout) | {"command_id": None} == {
            "order_id": "o-cli-1",
            "accepted": False,
            "version": 2,
            "token": None,
            "command_id": None,
            "reason": "order o-cli-1 is CANCELLED: it cannot be cancelled",
        }
        assert again.stderr.strip().splitlines() == [
            "error: CancelOrder o-cli-1 rejected: order o-cli-1 is CANCELLED: it cannot be cancelled"
        ]

        fire_and_forget = runner.invoke(app, [*base(topics), "place", "--customer", "c-9", "--item", "A:1:1"])
        assert fire_and_forget.exit_code == 0 and fire_and_forget.stdout.strip().startswith("o-")


def test_bad_input_produces_nothing_and_a_missing_service_times_out(topics):
    bad = runner.invoke(app, [*base(topics), "place", "--customer", "c-9", "--item", "A:0:1", "--wait"])
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1
    assert read_topic(topics, ORDERS_COMMANDS) == []

    waited = runner.invoke(
        app, [*base(topics), "cancel", "o-nobody", "--wait", "--json"], env={"ORDERSTREAM_WAIT_TIMEOUT_S": "1"}
    )
    assert waited.exit_code == 3
    assert "no reply" in waited.stderr and json.loads(waited.stdout)["accepted"] is None
