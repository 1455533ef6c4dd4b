"""Pre-filled orders.events topics for the read-side benchmarks: realistic order histories, written fast.

Histories: every order starts with OrderPlaced (1-4 lines, skewed SKUs) and then follows one of a few workflows
(authorized, reserved, confirmed, shipped, delivered / confirmed only / payment declined and rejected / cancelled /
still placed), about 4.6 events per order. Orders overlap in time: a window of in-flight orders is interleaved in the
log the way a live order service writes them, so a consumer batch rarely holds many events of one order. Values are
encoded with the codec and carry the CloudEvents headers; the producer is the idempotent one (acks=all, lz4).
One fill per event count is cached for the whole run, so rebuild, decode-only, ConsumerPerformance and memory read the
same log.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.env import BenchEnv
from orderstream.config import Settings


@dataclass(frozen=True)
class Filled:
    settings: Settings
    events: int
    orders: int
    highs: dict[int, int]  # partition -> high watermark
    seconds: float
    value_bytes: int


_CACHE: dict[int, Filled] = {}
EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
WINDOW = 200  # orders in flight at once


def order_events(seed: int = 7) -> Iterator:
    """An endless, reproducible stream of order events, histories interleaved."""
    from orderstream.domain.events import (
        OrderCancelled,
        OrderConfirmed,
        OrderDelivered,
        OrderLine,
        OrderLineReservationUpdated,
        OrderPaymentUpdated,
        OrderPlaced,
        OrderRejected,
        OrderShipped,
        PaymentStatus,
        ReservationStatus,
    )

    rng = random.Random(seed)
    skus = [f"SKU-{n:05d}" for n in range(500)]
    weights = [1 / (rank**1.1) for rank in range(1, len(skus) + 1)]
    prices = [rng.randrange(199, 19_999) for _ in skus]
    counter = 0

    def history(index: int) -> list:
        nonlocal counter
        oid = f"o-{index:09d}"
        at = EPOCH + timedelta(milliseconds=index * 2)
        chosen = sorted(set(rng.choices(range(len(skus)), weights=weights, k=rng.randint(1, 4))))
        lines = tuple(
            OrderLine(sku=skus[s], quantity=rng.choice((1, 1, 1, 2, 3)), unit_price_minor=prices[s]) for s in chosen
        )
        roll = rng.random()
        if roll < 0.60:
            path = ["pay", "reserve", OrderConfirmed, OrderShipped, OrderDelivered]
        elif roll < 0.75:
            path = ["pay", OrderConfirmed]
        elif roll < 0.85:
            path = ["decline", OrderRejected]
        elif roll < 0.95:
            path = [OrderCancelled]
        else:
            path = []
        events = []
        for version, kind in enumerate(["placed", *path], start=1):
            counter += 1
            common = {
                "event_id": f"e-{counter:012d}",
                "version": version,
                "occurred_at": at + timedelta(seconds=version),
                "correlation_id": oid,
                "causation_id": f"c-{counter:012d}",
                "order_id": oid,
            }
            if kind == "placed":
                total = sum(line.amount_minor for line in lines)
                events.append(
                    OrderPlaced(
                        **common,
                        customer_id=f"c-{rng.randrange(50_000):06d}",
                        currency="EUR",
                        lines=lines,
                        total_minor=total,
                        channel="bench",
                    )
                )
            elif kind == "pay":
                events.append(OrderPaymentUpdated(**common, payment_status=PaymentStatus.AUTHORIZED))
            elif kind == "decline":
                events.append(
                    OrderPaymentUpdated(**common, payment_status=PaymentStatus.DECLINED, reason="insufficient funds")
                )
            elif kind == "reserve":
                events.append(
                    OrderLineReservationUpdated(
                        **common, sku=lines[0].sku, reservation_status=ReservationStatus.RESERVED
                    )
                )
            elif kind is OrderShipped:
                events.append(OrderShipped(**common, carrier="DHL", tracking_number=f"T{counter}"))
            elif kind in (OrderRejected, OrderCancelled):
                events.append(kind(**common, reason="bench"))
            else:
                events.append(kind(**common))
        events.reverse()  # pop() from the end
        return events

    next_order = 0
    active: list[list] = []
    while True:
        while len(active) < WINDOW:
            active.append(history(next_order))
            next_order += 1
        slot = rng.randrange(len(active))
        events = active[slot]
        yield events.pop()
        if not events:
            active[slot] = active[-1]
            active.pop()


def fill(env: BenchEnv, events: int) -> Filled:
    """A fresh topic prefix whose orders.events holds `events` events (cached per count for the run)."""
    if events in _CACHE:
        return _CACHE[events]
    from confluent_kafka import Consumer, Producer, TopicPartition

    from orderstream.domain.events import OrderPlaced
    from orderstream.kafka.clients import consumer_config, producer_config
    from orderstream.schemas.codec import Codec
    from orderstream.topology import ORDERS_EVENTS

    settings = env.fresh()
    topic = settings.topic(ORDERS_EVENTS)
    codec = Codec()
    producer = Producer(
        producer_config(
            settings,
            **{
                "linger.ms": 50,
                "batch.size": 1_000_000,
                "queue.buffering.max.messages": 1_000_000,
                "delivery.report.only.error": True,
            },
        )
    )
    errors: list[str] = []

    def failed(err, _msg) -> None:
        if err is not None:
            errors.append(err.str())

    began = time.perf_counter()
    orders = value_bytes = 0
    stream = order_events()
    for n in range(events):
        event = next(stream)
        orders += type(event) is OrderPlaced
        value = codec.encode(event)
        value_bytes += len(value)
        while True:
            try:
                producer.produce(
                    topic,
                    key=event.order_id.encode(),
                    value=value,
                    headers=codec.headers(event, "orderstream/bench"),
                    on_delivery=failed,
                )
                break
            except BufferError:
                producer.poll(0.05)
        if n % 2000 == 0:
            producer.poll(0)
    remaining = producer.flush(300)
    if remaining or errors:
        raise RuntimeError(f"fill failed: {remaining} unacknowledged, errors: {errors[:3]}")
    seconds = time.perf_counter() - began
    probe = Consumer(consumer_config(settings, "bench-probe"))
    metadata = probe.list_topics(topic, timeout=10)
    highs = {
        p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in metadata.topics[topic].partitions
    }
    probe.close()
    assert sum(highs.values()) == events, (highs, events)
    _CACHE[events] = result = Filled(settings, events, orders, highs, seconds, value_bytes)
    print(f"  filled {topic}: {events} events ({orders} orders) in {seconds:.1f}s", flush=True)
    return result
