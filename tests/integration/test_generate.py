"""`orderstream generate` against the real broker: every record acknowledged lands exactly once, decodable."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter

from orderstream.domain.commands import PlaceOrder
from orderstream.kafka.clients import consumer_config
from tests.support.wire import CODEC


def read_all(settings, topic: str, expected: int, timeout_s: float = 30.0) -> list:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(consumer_config(settings, f"read-{uuid.uuid4()}"))
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records = []
    import time

    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=0.5):
            assert message.error() is None
            records.append(message)
    consumer.close()
    return records


def test_generate_sends_every_command_once(topics):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            topics.effective_bootstrap,
            "--topic-prefix",
            topics.topic_prefix,
            "generate",
            "--orders",
            "400",
            "--seed",
            "11",
            "--processes",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["orders"] == 400 and summary["seed"] == 11

    records = read_all(topics, topics.topic("orders.commands"), summary["records"])
    assert len(records) == summary["records"]
    decoded = [CODEC.decode(m.value()) for m in records]
    assert Counter(type(c).__name__ for c in decoded)["PlaceOrder"] == 400
    assert len({c.command_id for c in decoded}) == len(decoded), "no command was sent twice"
    for message, command in zip(records, decoded, strict=True):
        assert message.key().decode() == command.order_id
    assert all(c.channel == "generator" for c in decoded if isinstance(c, PlaceOrder))


def test_generate_refuses_a_bad_currency_and_sends_nothing(topics):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            topics.effective_bootstrap,
            "--topic-prefix",
            topics.topic_prefix,
            "generate",
            "--orders",
            "5",
            "--currency",
            "EURO",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "ISO 4217" in result.stderr
    assert read_all(topics, topics.topic("orders.commands"), 1, timeout_s=2) == []


def test_a_seed_used_again_is_refused_with_one_line_and_sends_nothing(topics):
    def generate(*args: str):
        return subprocess.run(
            [sys.executable, "-m", "orderstream.cli.main", "-b", topics.effective_bootstrap,
             "--topic-prefix", topics.topic_prefix, "--data-dir", str(topics.data_dir), "generate", *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    first = generate("--orders", "3", "--seed", "77", "--cancel-ratio", "0", "--json")
    assert first.returncode == 0, first.stderr
    again = generate("--orders", "5", "--seed", "77", "--cancel-ratio", "0")
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "seed 77 was already used on these topics" in again.stderr, again.stderr
    fresh = generate("--orders", "2", "--cancel-ratio", "0", "--json")  # no --seed: a fresh one, never 77
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["seed"] != 77
    assert len(read_all(topics, topics.topic("orders.commands"), 6, timeout_s=5)) == 5  # 3 + 2: nothing for the copy
