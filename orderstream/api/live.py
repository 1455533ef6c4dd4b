"""Live order events for GET /orders/{id}/events: history from the log, then each new event as the log gets it.

One reader per process (OrderEventsTail) follows every partition of orders.events from where they ended when it
started, and fans each record out to the streams subscribed to its key. A stream joins history and live without a
gap or a repeat by log position:
1. subscribe(key): under the tail's lock, note the next offset P the tail will hand out on the key's partition;
   every record at P or later reaches the stream's queue;
2. read_history(): a one-shot reader of that partition (read_committed) from the stream's start up to P;
3. then the queue, skipping any position already sent.
An event's SSE id is its log position as a read-your-writes token (`orders.events:<partition>:<offset>`), so a
client that reconnects with Last-Event-ID resumes right after it: every event exactly once, in version order (one
order's events sit on one partition, in version order).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from orderstream.config import Settings
from orderstream.kafka.clients import consumer_config, is_fatal
from orderstream.kafka.partitioner import partition_of
from orderstream.kafka.reading import consume_available
from orderstream.topology import ORDERS_EVENTS

log = logging.getLogger(__name__)

KAFKA_TIMEOUT_S = 10.0
HISTORY_MARGIN = timedelta(minutes=5)  # how far before an order's placed_at its history is looked for


class TailUnavailable(RuntimeError):
    """orders.events cannot be read (the broker does not answer, or the topic does not exist)."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    partition: int
    offset: int
    value: bytes | None


class OrderEventsTail:
    """Follows orders.events; subscribe() hands a stream every record of its key from a known position on."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic(ORDERS_EVENTS)
        self.partitions = 0
        self._positions: dict[int, int] = {}
        self._subscribers: dict[bytes, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self.failure: str | None = None

    def start(self) -> None:
        """Blocking: metadata, end offsets, then the reader thread."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        from orderstream.kafka.offsets import watermarks

        consumer = Consumer(consumer_config(self.settings, f"orderstream-api-live-{uuid.uuid4().hex}"))
        try:
            metadata = consumer.list_topics(self.topic, timeout=KAFKA_TIMEOUT_S).topics.get(self.topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                raise TailUnavailable(f"cannot read {self.topic}: it does not exist (run `orderstream topics init`)")
            self.partitions = len(metadata.partitions)
            for number in metadata.partitions:
                self._positions[number] = watermarks(consumer, self.topic, number, KAFKA_TIMEOUT_S)[1]
        except KafkaException as exc:
            consumer.close()
            raise TailUnavailable(f"cannot read {self.topic}: {exc.args[0].str()}") from None
        except TailUnavailable:
            consumer.close()
            raise
        consumer.assign([TopicPartition(self.topic, p, o) for p, o in self._positions.items()])
        self._consumer = consumer
        self._thread = threading.Thread(target=self._follow, name="orderstream-api-live", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def partition_of(self, key: bytes) -> int:
        return partition_of(key, self.partitions)

    def subscribe(self, key: bytes, queue: asyncio.Queue) -> int:
        """Every record of `key` from the returned offset on (of its partition) will be put on `queue`."""
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.setdefault(key, []).append(entry)
            return self._positions[self.partition_of(key)]

    def unsubscribe(self, key: bytes, queue: asyncio.Queue) -> None:
        with self._lock:
            entries = [e for e in self._subscribers.get(key, []) if e[1] is not queue]
            if entries:
                self._subscribers[key] = entries
            else:
                self._subscribers.pop(key, None)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                records = consume_available(self._consumer, 500, 0.2)
            except Exception as exc:  # noqa: BLE001 - reported to every stream (they end), and logged
                self._fail(f"reading {self.topic}: {exc}")
                return
            with self._lock:
                for record in records:
                    error = record.error()
                    if error is not None:
                        if is_fatal(error):
                            self._fail(f"reading {self.topic}: {error.str()}")
                            return
                        continue
                    for loop, queue in self._subscribers.get(record.key(), ()):
                        item = LogRecord(record.partition(), record.offset(), record.value())
                        loop.call_soon_threadsafe(queue.put_nowait, item)
                    self._positions[record.partition()] = record.offset() + 1

    def _fail(self, message: str) -> None:
        log.error("%s", message)
        with self._lock:
            self.failure = message
            for entries in self._subscribers.values():
                for loop, queue in entries:
                    loop.call_soon_threadsafe(queue.put_nowait, None)


def history_start(settings: Settings, partition: int, placed_at: str | None) -> int:
    """Where an order's history can start on its partition: the offset of the first record no older than its
    placed_at minus HISTORY_MARGIN (records carry their produce time), or the partition's start."""
    from confluent_kafka import Consumer, TopicPartition

    topic = settings.topic(ORDERS_EVENTS)
    consumer = Consumer(consumer_config(settings, f"orderstream-api-history-{uuid.uuid4().hex}"))
    try:
        low, _ = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=KAFKA_TIMEOUT_S)
        if placed_at is None:
            return low
        moment = datetime.fromisoformat(placed_at.replace("Z", "+00:00")) - HISTORY_MARGIN
        found = consumer.offsets_for_times(
            [TopicPartition(topic, partition, int(moment.timestamp() * 1000))], timeout=KAFKA_TIMEOUT_S
        )[0]
        return low if found.error is not None or found.offset < 0 else max(low, found.offset)
    finally:
        consumer.close()


def read_history(settings: Settings, key: bytes, partition: int, start: int, until: int) -> list[LogRecord]:
    """The records of `key` on `partition` at offsets [start, until), read_committed (blocking, bounded by until:
    a position the tail has already passed, so the log has it)."""
    from confluent_kafka import Consumer, TopicPartition

    if start >= until:
        return []
    topic = settings.topic(ORDERS_EVENTS)
    consumer = Consumer(consumer_config(settings, f"orderstream-api-history-{uuid.uuid4().hex}"))
    found: list[LogRecord] = []
    deadline = time.monotonic() + 60
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        while time.monotonic() < deadline:
            for record in consume_available(consumer, 1_000, 0.2):
                if record.error() is not None:
                    if is_fatal(record.error()):
                        raise TailUnavailable(f"reading {topic}: {record.error().str()}")
                    continue
                if record.offset() < until and record.key() == key:
                    found.append(LogRecord(record.partition(), record.offset(), record.value()))
            position = consumer.position([TopicPartition(topic, partition)])[0].offset
            if position >= until:
                return found
        raise TailUnavailable(f"reading {topic} partition {partition} up to offset {until} took over 60 s")
    finally:
        consumer.close()
