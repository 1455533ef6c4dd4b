"""Records that cannot be decoded or handled land in <topic>.dlq unchanged, and everything else is processed.

Garbage bytes, an unknown schema fingerprint and a valid record of the wrong type are written to orders.commands by
a plain producer between valid commands; the order service dead-letters exactly those three (in the same transaction
as the batch) and handles every valid command. `dlq list/show/retry` then see and re-publish them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from confluent_kafka import Producer

from orderstream.domain.events import StockAdded
from orderstream.kafka.clients import producer_config
from tests.support.orders import CODEC, place_order, read_topic, running_order_service


def cli(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            settings.effective_bootstrap,
            "--topic-prefix",
            settings.topic_prefix,
            "--data-dir",
            str(settings.data_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_records_go_to_the_dlq_and_the_rest_is_processed(topics):
    wrong_type = StockAdded(
        event_id=str(uuid.uuid4()),
        version=1,
        occurred_at=datetime.now(UTC),
        correlation_id="x",
        causation_id="x",
        sku="SKU-1",
        quantity=5,
        on_hand=5,
    )
    bad = {
        "garbage": b"\x00\x01 definitely not avro",
        "unknown-fingerprint": b"\xc3\x01" + b"\xff" * 8 + b"\x02",
        "wrong-type": CODEC.encode(wrong_type),
    }
    producer = Producer(producer_config(topics))
    commands_topic = topics.topic("orders.commands")
    orders = [place_order(f"dl-{i}") for i in range(6)]
    for i, command in enumerate(orders):
        producer.produce(commands_topic, key=command.order_id.encode(), value=CODEC.encode(command))
        if i < len(bad):
            name, value = list(bad.items())[i]
            producer.produce(
                commands_topic, key=command.order_id.encode(), value=value, headers=[("probe", name.encode())]
            )
    assert producer.flush(10) == 0

    with running_order_service(topics):
        events = read_topic(topics, "orders.events", until=lambda got: len(got) >= len(orders))
        letters = read_topic(topics, "orders.commands.dlq", until=lambda got: len(got) >= len(bad), decode=False)
    assert sorted(e.order_id for _, e in events) == sorted(o.order_id for o in orders)

    by_probe = {}
    for message, _ in letters:
        headers = {k: (v or b"").decode(errors="replace") for k, v in message.headers()}
        by_probe[headers["probe"]] = (message, headers)
    assert set(by_probe) == set(bad)
    for name, (message, headers) in by_probe.items():
        assert message.value() == bad[name], "the dead letter keeps the raw bytes"
        assert headers["dlq.topic"] == commands_topic and headers["dlq.group"] == f"{topics.topic_prefix}order-service"
        assert int(headers["dlq.offset"]) >= 0 and headers["dlq.error.class"]
    assert by_probe["garbage"][1]["dlq.stage"] == "decode"
    assert by_probe["unknown-fingerprint"][1]["dlq.stage"] == "decode"
    assert by_probe["wrong-type"][1]["dlq.stage"] == "validate"

    listed = json.loads(cli(topics, "dlq", "list", "--json").stdout)
    assert len(listed) == 3 and {letter["stage"] for letter in listed} == {"decode", "validate"}
    shown = cli(topics, "dlq", "show", listed[0]["id"], "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["value_hex"]

    retried = cli(topics, "dlq", "retry", listed[0]["id"], "--json")
    assert retried.returncode == 0, retried.stderr
    after = json.loads(cli(topics, "dlq", "list", "--all", "--json").stdout)
    assert [letter["retried"] for letter in after if letter["id"] == listed[0]["id"]] == [True]
    assert len([letter for letter in after if not letter["retried"]]) == 2
    unknown = cli(topics, "dlq", "show", "nope:0:0")
    assert unknown.returncode == 1 and "no dead letter" in unknown.stderr
