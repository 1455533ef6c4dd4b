"""Helpers for the topic-copy tests (`replay topic`): source topics filled with order events, read back whole."""

from __future__ import annotations

import random
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from orderstream.kafka.clients import admin_config, consumer_config, producer_config
from orderstream.kafka.reading import read_records
from orderstream.producers.topic_copy import SOURCE_HEADER, CopyFilter
from tests.support.histories import random_history
from tests.support.wire import CODEC

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
    rng = random.Random(seed)
    events = [e for n in range(count_orders) for e in random_history(rng, f"o{n}")]
    rng.shuffle(events)  # keys interleave; each order's own order does not matter to a copy
    producer = Producer(producer_config(settings, transactional_id=f"fill-{uuid.uuid4().hex[:6]}"))
    producer.init_transactions(30)
    for start in range(0, len(events), 100):
        producer.begin_transaction()
        for n, event in enumerate(events[start : start + 100], start=start):
            producer.produce(topic, key=event.aggregate_id.encode(), value=CODEC.encode(event),
                             headers=CODEC.headers(event, "tests"), timestamp=BASE_MS + n * 1000)  # fmt: skip
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
