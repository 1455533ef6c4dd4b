"""`orderstream tail` decodes what is on a topic and follows one correlation id across topics."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from confluent_kafka import Producer

from orderstream.domain.events import OrderConfirmed, PaymentAuthorized
from orderstream.kafka.clients import producer_config
from tests.support.wire import CODEC


def event_meta(correlation: str) -> dict:
    return dict(
        event_id=str(uuid.uuid4()),
        version=1,
        occurred_at=datetime.now(UTC),
        correlation_id=correlation,
        causation_id=str(uuid.uuid4()),
    )


def test_tail_follows_a_correlation_id_across_topics(topics):
    producer = Producer(producer_config(topics))
    wanted = [
        ("orders.events", OrderConfirmed(order_id="o-1", **event_meta("o-1"))),
        (
            "payments.events",
            PaymentAuthorized(order_id="o-1", customer_id="c-1", amount_minor=100, currency="EUR", **event_meta("o-1")),
        ),
    ]
    other = ("orders.events", OrderConfirmed(order_id="o-2", **event_meta("o-2")))
    for topic, event in [*wanted, other]:
        producer.produce(
            topics.topic(topic),
            key=event.order_id.encode(),
            value=CODEC.encode(event),
            headers=CODEC.headers(event, "test"),
        )
    producer.produce(topics.topic("orders.events"), key=b"o-1", value=b"not avro")
    assert producer.flush(10) == 0

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            topics.effective_bootstrap,
            "--topic-prefix",
            topics.topic_prefix,
            "tail",
            "all",
            "--from-beginning",
            "--no-follow",
            "--correlation",
            "o-1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["type"] for r in lines) == ["OrderConfirmed", "PaymentAuthorized"]
    assert {r["headers"]["ce_correlationid"] for r in lines} == {"o-1"}

    everything = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            topics.effective_bootstrap,
            "--topic-prefix",
            topics.topic_prefix,
            "tail",
            "orders.events",
            "--from-beginning",
            "--no-follow",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    types = sorted(json.loads(line)["type"] for line in everything.stdout.splitlines())
    assert types == ["OrderConfirmed", "OrderConfirmed", "undecodable"]


def test_tail_of_a_missing_topic_is_one_clear_error(topics):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            topics.effective_bootstrap,
            "--topic-prefix",
            topics.topic_prefix,
            "tail",
            "no.such.topic",
            "--no-follow",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "does not exist" in result.stderr
