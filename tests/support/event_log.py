"""Write order events to orders.events the way the order service does: codec value, CloudEvents headers, key = order
id, inside Kafka transactions (committed or aborted); and wait until projections have applied them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, Producer, TopicPartition

from orderstream.config import Settings
from orderstream.domain.events import Event
from orderstream.kafka.clients import consumer_config, producer_config
from orderstream.kafka.topics import ensure_topics
from orderstream.runtime.projector import group_id_of
from orderstream.topology import ORDERS_EVENTS, TOPICS
from orderstream.views.registry import SPECS
from orderstream.views.store import NotInitialized, ProjectionStore
from tests.support.databases import url_of
from tests.support.wire import CODEC


class EventLog:
    """A transactional producer of order events that remembers the last committed offset of every partition."""

    def __init__(self, settings: Settings, transactional: bool = True) -> None:
        self.topic = settings.topic(ORDERS_EVENTS)
        self.codec = CODEC
        self.transactional = transactional
        txn_id = f"test-{uuid.uuid4().hex[:8]}" if transactional else None
        self.producer = Producer(producer_config(settings, transactional_id=txn_id))
        if transactional:
            self.producer.init_transactions(30)
        self.committed: dict[int, int] = {}  # partition -> last committed offset

    def write(self, events: Sequence[Event], *, abort: bool = False) -> list[tuple[int, int]]:
        """Produce events (one transaction when transactional); returns (partition, offset) per event, in order."""
        delivered: dict[int, tuple[int, int]] = {}
        errors = []

        def report(index):
            def callback(err, msg):
                if err is not None:
                    errors.append(err)
                else:
                    delivered[index] = (msg.partition(), msg.offset())

            return callback

        if self.transactional:
            self.producer.begin_transaction()
        for index, event in enumerate(events):
            self.producer.produce(
                self.topic, key=event.aggregate_id.encode(), value=self.codec.encode(event),
                headers=self.codec.headers(event, "tests"), on_delivery=report(index),
            )  # fmt: skip
            self.producer.poll(0)
        if self.transactional:
            self.producer.flush(30)
            (self.producer.abort_transaction if abort else self.producer.commit_transaction)(30)
        else:
            self.producer.flush(30)
        assert not errors, errors
        positions = [delivered[i] for i in range(len(events))]
        if not abort:
            for partition, offset in positions:
                self.committed[partition] = max(offset, self.committed.get(partition, -1))
        return positions

    def write_raw(self, key: bytes, value: bytes) -> tuple[int, int]:
        out = []
        if self.transactional:
            self.producer.begin_transaction()
        self.producer.produce(
            self.topic, key=key, value=value, on_delivery=lambda e, m: out.append((m.partition(), m.offset()))
        )
        if self.transactional:
            self.producer.commit_transaction(30)
        self.producer.flush(30)
        return out[0]

    def close(self) -> None:
        self.producer.flush(10)


def wait_applied(url_template: str, log: EventLog, timeout_s: float = 60.0, names=tuple(SPECS), check=None) -> None:
    """Block until every projection's stored next offset is past every committed event of the log.
    check() is called while waiting (e.g. to raise at once when the projector died)."""
    stores = {n: ProjectionStore(url_of(url_template, n), SPECS[n]) for n in names}
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            lagging = []
            for name, store in stores.items():
                try:
                    stored = store.next_offsets()
                except NotInitialized:  # the projector has not created its tables yet
                    stored = {}
                for partition, offset in log.committed.items():
                    if stored.get((log.topic, partition), 0) <= offset:
                        lagging.append((name, partition, stored.get((log.topic, partition)), offset))
            if not lagging:
                return
            if check is not None:
                check()
            if time.monotonic() > deadline:
                raise AssertionError(f"projections still behind after {timeout_s}s: {lagging}")
            time.sleep(0.05)
    finally:
        for store in stores.values():
            store.dispose()


def dump_all(url_template: str) -> dict[str, dict[str, list[tuple]]]:
    """Every table (live generation) of every projection: projection -> role -> rows."""
    out = {}
    for name, spec in SPECS.items():
        store = ProjectionStore(url_of(url_template, name), spec)
        try:
            out[name] = store.dump()
        finally:
            store.dispose()
    return out


def digests_all(url_template: str) -> dict[str, dict[str, str]]:
    out = {}
    for name, spec in SPECS.items():
        store = ProjectionStore(url_of(url_template, name), spec)
        try:
            out[name] = store.digests()
        finally:
            store.dispose()
    return out


def write_orders(log: EventLog, histories, per_transaction: int = 50) -> None:
    """Whole order histories, per_transaction orders to a transaction."""
    for start in range(0, len(histories), per_transaction):
        log.write([e for h in histories[start : start + per_transaction] for e in h])


def order_events_topic(settings):
    """Only orders.events (what the order views read): creating every pipeline topic costs a loaded broker seconds."""
    ensure_topics(settings, tuple(t for t in TOPICS if t.name == ORDERS_EVENTS))
    return settings


def stored_offsets(template: str, names=tuple(SPECS)) -> dict[str, dict]:
    """Per projection: the next offset of every partition its database holds ({} before it made its tables)."""
    out = {}
    for name in names:
        store = ProjectionStore(url_of(template, name), SPECS[name])
        try:
            out[name] = store.next_offsets()
        except NotInitialized:  # not created yet
            out[name] = {}
        finally:
            store.dispose()
    return out


def kafka_offsets(settings: Settings, names=tuple(SPECS)) -> dict[str, dict]:
    """Per projection: its consumer group's committed offsets on orders.events (the mirror Kafka's lag tools read)."""
    topic, out = settings.topic(ORDERS_EVENTS), {}
    for name in names:
        consumer = Consumer(consumer_config(settings, group_id_of(name, settings.topic_prefix)))
        try:
            committed = consumer.committed([TopicPartition(topic, p) for p in range(settings.partitions)], timeout=10)
        finally:
            consumer.close()
        out[name] = {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
    return out
