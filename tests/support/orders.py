"""Helpers for the order service's tests: commands, a service in a thread, reading topics read_committed."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from orderstream.config import Settings
from orderstream.domain.commands import CancelOrder, PlaceOrder
from orderstream.domain.events import OrderLine
from orderstream.kafka.clients import consumer_config
from tests.support.wire import CODEC


def place_order(order_id: str, command_id: str | None = None, customer: str = "cust-1") -> PlaceOrder:
    return PlaceOrder(
        command_id=command_id or str(uuid.uuid4()),
        issued_at=datetime.now(UTC),
        correlation_id=order_id,
        order_id=order_id,
        customer_id=customer,
        currency="EUR",
        lines=(OrderLine(sku="SKU-1", quantity=2, unit_price_minor=250),),
        channel="test",
    )


def cancel_order(order_id: str, expected_version: int | None = None, command_id: str | None = None) -> CancelOrder:
    return CancelOrder(
        command_id=command_id or str(uuid.uuid4()),
        issued_at=datetime.now(UTC),
        correlation_id=order_id,
        order_id=order_id,
        reason="test",
        expected_version=expected_version,
    )


class RunningService:
    """A service's run(stop) in a thread; stop() joins it and re-raises whatever it raised."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.service.run(self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - handed to the test by stop()
            self.error = exc

    def start(self) -> RunningService:
        self.thread.start()
        return self

    @property
    def owned(self) -> set[int]:
        processor = getattr(self.service, "processor", None)
        return set(processor.owned) if processor is not None else set()

    def wait_owned(self, predicate, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.owned):
            if self.error is not None:
                raise self.error
            assert time.monotonic() < deadline, f"assignment never became right: {self.owned}"
            time.sleep(0.05)

    def check(self) -> None:
        """Raise at once if the service has died (with what it raised, if anything)."""
        if not self.thread.is_alive():
            self.stop()
            raise AssertionError("the service stopped on its own")

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "service did not stop within 60s"
        if self.error is not None:
            raise self.error


@contextmanager
def running_order_service(settings: Settings, **overrides: Any):
    from orderstream.services.order_service import OrderService

    running = RunningService(OrderService(settings, **overrides)).start()
    try:
        yield running
    finally:
        running.stop()


def read_topic(
    settings: Settings,
    name: str,
    until=None,
    timeout_s: float = 20.0,
    isolation: str = "read_committed",
    decode: bool = True,
) -> list[tuple[Any, Any]]:
    """(record, decoded) for every record of a topic up to its current end, or until `until(decoded_list)` holds.
    With decode=False the second element is the raw value (for topics that hold anything, like dead letters)."""
    from confluent_kafka import Consumer, TopicPartition

    from orderstream.kafka.offsets import watermarks

    topic = settings.topic(name)
    consumer = Consumer(consumer_config(settings, f"test-read-{uuid.uuid4().hex}", **{"isolation.level": isolation}))
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[tuple[Any, Any]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in consumer.consume(500, 0.2):
                assert record.error() is None, record.error()
                out.append((record, CODEC.decode(record.value()) if decode else record.value()))
            if until is not None:
                if until([value for _, value in out]):
                    return out
                continue
            ends = {p: watermarks(consumer, topic, p)[1] for p in partitions}
            positions = {
                tp.partition: tp.offset for tp in consumer.position([TopicPartition(topic, p) for p in partitions])
            }
            if all(ends[p] == 0 or positions[p] >= ends[p] for p in partitions):
                return out
        raise AssertionError(f"reading {topic} timed out with {len(out)} records")
    finally:
        consumer.close()


def events_by_order(events: list[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        grouped[event.order_id].append(event)
    return grouped
