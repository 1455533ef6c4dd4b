"""`replay topic SRC --to DST`: exactly the matching records are copied - checked record by record (partition, key,
value, headers, timestamp) - into a topic the tool creates like SRC, or re-partitioned into one with more
partitions; a re-run copies nothing twice."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from orderstream.kafka.clients import admin_config, consumer_config, producer_config
from orderstream.kafka.reading import read_records
from orderstream.producers.topic_copy import SOURCE_HEADER, CopyFilter, TopicCopy
from orderstream.schemas.codec import Codec
from tests.support.histories import random_history

BASE_MS = 1_700_000_000_000  # the records' timestamps: BASE_MS + n seconds


def create(settings, name: str, partitions: int) -> str:
    """An event topic as orderstream makes them: kept forever. With the broker's default retention (7 days), the
    2024 timestamps fill() writes were deleted by the broker's retention check mid-test (low watermarks above 0),
    and a copy then missed the first records of each partition."""
    topic = settings.topic(name)
    admin = AdminClient(admin_config(settings))
    admin.create_topics([NewTopic(topic, partitions, 1, config={"retention.ms": "-1"})], request_timeout=30)[
        topic
    ].result()
    return topic


def fill(settings, topic: str, count_orders: int, seed: int = 3) -> None:
    """Order events with their codec values and CloudEvents headers, keyed by order id, timestamps 1 s apart, in
    transactions (so the topic also holds commit markers)."""
    codec, rng = Codec(), random.Random(seed)
    events = [e for n in range(count_orders) for e in random_history(rng, f"o{n}")]
    rng.shuffle(events)  # keys interleave; each order's own order does not matter to a copy
    producer = Producer(producer_config(settings, transactional_id=f"fill-{uuid.uuid4().hex[:6]}"))
    producer.init_transactions(30)
    for start in range(0, len(events), 100):
        producer.begin_transaction()
        for n, event in enumerate(events[start : start + 100], start=start):
            producer.produce(topic, key=event.aggregate_id.encode(), value=codec.encode(event),
                             headers=codec.headers(event, "tests"), timestamp=BASE_MS + n * 1000)  # fmt: skip
        producer.commit_transaction(30)


def read_all(settings, topic: str) -> list[tuple]:
    """(partition, offset, key, value, headers, timestamp) of every committed record, by partition and offset.

    Reads once the topic's transactions have settled: commit_transaction returns when the commit is decided, and the
    markers reach the partitions a moment later; until then a read_committed reader's end (the last stable offset)
    is still before the transaction, so a partition could look empty."""
    consumer = Consumer(consumer_config(settings, f"read-{uuid.uuid4().hex[:6]}"))
    uncommitted = Consumer(
        consumer_config(settings, f"read-{uuid.uuid4().hex[:6]}", **{"isolation.level": "read_uncommitted"})
    )
    try:
        deadline = time.monotonic() + 10
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        while (
            metadata.error is not None
            or not metadata.partitions
            or any(m.leader < 0 for m in metadata.partitions.values())
        ) and time.monotonic() < deadline:
            time.sleep(0.1)  # a topic created a moment ago may not be in this new client's metadata (or led) yet
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        for p in metadata.partitions:
            where = TopicPartition(topic, p)
            while (
                consumer.get_watermark_offsets(where, timeout=10, cached=False)[1]
                < uncommitted.get_watermark_offsets(where, timeout=10, cached=False)[1]
            ) and time.monotonic() < deadline:
                time.sleep(0.05)  # fmt: skip
        records = [(m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1])
                   for m in read_records(consumer, [topic], from_beginning=True, follow=False)]  # fmt: skip
        return sorted(records, key=lambda record: record[:2])
    finally:
        uncommitted.close()
        consumer.close()


def expected_copy(source_records, source_topic, copy_filter: CopyFilter) -> list[tuple]:
    return [
        (p, key, value, [*headers, (SOURCE_HEADER, f"{source_topic}:{p}:{o}".encode())], ts)
        for p, o, key, value, headers, ts in source_records
        if copy_filter.matches(ts, headers)
    ]


def without_offsets(records) -> list[tuple]:
    return [(p, key, value, headers, ts) for p, _, key, value, headers, ts in records]


@pytest.fixture
def source(settings):
    topic = create(settings, "src.events", 3)
    fill(settings, topic, 150)
    return settings, topic, read_all(settings, topic)


@pytest.mark.parametrize(
    "window",
    [
        dict(),
        dict(from_s=100),
        dict(from_s=100, until_s=300, event_type="OrderPlaced"),
        dict(until_s=250, event_type="orderstream.orders.OrderConfirmed.v1"),
    ],
)
def test_copies_exactly_the_matching_records_into_a_topic_created_like_the_source(source, window):
    settings, topic, records = source
    from datetime import datetime

    at = lambda s: None if s is None else datetime.fromtimestamp((BASE_MS + s * 1000) / 1000, UTC)  # noqa: E731
    copy_filter = CopyFilter.of(at(window.get("from_s")), at(window.get("until_s")), window.get("event_type"))
    name = f"dst.{uuid.uuid4().hex[:6]}"
    result = TopicCopy(settings, "src.events", name, copy_filter).run()
    expected = expected_copy(records, topic, copy_filter)
    assert 0 < len(expected) <= len(records)
    assert result.created and result.same_partitioning and result.copied == len(expected)
    assert without_offsets(read_all(settings, settings.topic(name))) == expected  # record by record, in order

    again = TopicCopy(settings, "src.events", name, copy_filter).run()  # a re-run: nothing twice
    assert again.copied == 0 and again.resumed
    assert without_offsets(read_all(settings, settings.topic(name))) == expected


def test_into_more_partitions_keys_are_repartitioned_and_the_tool_says_so(source):
    settings, _, records = source
    create(settings, "wide.events", 5)
    runner = CliRunner()
    from orderstream.cli.main import app

    base = ["--bootstrap-servers", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix]
    result = runner.invoke(app, [*base, "replay", "topic", "src.events", "--to", "wide.events", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["copied"] == len(records) and not summary["same_partitioning"]
    assert any("re-partitioned by the default partitioner" in n for n in summary["notices"])
    copied = read_all(settings, settings.topic("wide.events"))
    assert sorted((k, v, ts) for _, _, k, v, _, ts in copied) == sorted((k, v, ts) for _, _, k, v, _, ts in records)
    partition_of_key: dict[bytes, set[int]] = {}
    for p, _, key, *_ in copied:
        partition_of_key.setdefault(key, set()).add(p)
    assert all(len(ps) == 1 for ps in partition_of_key.values())  # one key, one partition
    assert {p for p, *_ in copied} == set(range(5))
    by_key_src = {}  # per key, the source order is kept
    for p, o, key, *_ in records:
        by_key_src.setdefault(key, []).append((p, o))
    by_key_dst = {}
    for _, _, key, _, headers, _ in copied:
        source_position = dict(headers)[SOURCE_HEADER].decode().rsplit(":", 2)
        by_key_dst.setdefault(key, []).append((int(source_position[1]), int(source_position[2])))
    assert by_key_dst == by_key_src
