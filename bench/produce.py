"""Produce throughput: orderstream's Python producer (Avro, idempotent, acks=all) beside Kafka's ProducerPerformance.

The Python row times what a service does per event: encode a domain event (codec), build its CloudEvents headers,
produce() it with poll(0) every 1000 records, then flush until every record is acknowledged. The events (OrderPlaced,
1-4 lines) are built before the clock starts. The load generator (`orderstream generate`, which also plans each order
with its seeded random generator) is a separate row. Java gets the same broker, topic settings and average record size.
"""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime

from bench.env import BenchEnv

SOURCE = "orderstream/bench"
PRODUCER_OVERRIDES = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 1_000_000,
    "delivery.report.only.error": True,
}


def prebuilt_events(records: int) -> list:
    from orderstream.domain.events import OrderPlaced
    from orderstream.producers.load_plan import LoadProfile, plan_commands

    now = datetime.now(UTC)
    profile = LoadProfile(orders=records, seed=1, cancel_ratio=0.0)
    return [
        OrderPlaced(
            event_id=f"e-{n:012d}",
            version=1,
            occurred_at=now,
            correlation_id=c.order_id,
            causation_id=c.command_id,
            order_id=c.order_id,
            customer_id=c.customer_id,
            currency=c.currency,
            lines=c.lines,
            total_minor=sum(line.amount_minor for line in c.lines),
            channel="generator",
        )
        for n, c in enumerate(plan_commands(profile, lambda: now))
    ]


def produce_events(settings, events: list, warm_up: list) -> tuple[float, int]:
    """Encode + headers + produce every event, flush; (seconds, average value size). The warm-up events go first
    through the same producer and topic, untimed: the producer id, metadata and connections are set up by then."""
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config
    from orderstream.schemas.codec import Codec
    from orderstream.topology import ORDERS_EVENTS

    codec = Codec()
    topic = settings.topic(ORDERS_EVENTS)
    producer = Producer(producer_config(settings, **PRODUCER_OVERRIDES))
    errors: list[str] = []

    def failed(err, _msg) -> None:  # delivery.report.only.error: called for failures only
        errors.append(err.str())

    encode, headers, produce, poll = codec.encode, codec.headers, producer.produce, producer.poll
    for event in warm_up:
        produce(topic, encode(event), event.order_id.encode(), headers=headers(event, SOURCE), on_delivery=failed)
    producer.flush(60)
    size = 0
    began = time.perf_counter()
    for n, event in enumerate(events):
        value = encode(event)
        size += len(value)
        try:
            produce(topic, value, event.order_id.encode(), headers=headers(event, SOURCE), on_delivery=failed)
        except BufferError:
            poll(0.05)
            produce(topic, value, event.order_id.encode(), headers=headers(event, SOURCE), on_delivery=failed)
        if n % 1000 == 0:
            poll(0)
    remaining = producer.flush(300)
    seconds = time.perf_counter() - began
    if remaining or errors:
        raise RuntimeError(f"{remaining} records unacknowledged, {len(errors)} failed: {errors[:1]}")
    return seconds, round(size / len(events))


def bench_produce(env: BenchEnv, records: int) -> list[dict]:
    from orderstream.producers.generator import send_range
    from orderstream.producers.load_plan import LoadProfile

    events = prebuilt_events(records)
    settings = env.fresh()
    seconds, record_size = produce_events(settings, events, warm_up=events[:5_000])
    python_rate = records / seconds

    generator_settings = env.fresh()
    generated = send_range(generator_settings, LoadProfile(orders=records, seed=1, cancel_ratio=0.0), 0, records)
    if generated.failed:
        raise RuntimeError(f"generator: {generated.first_error}")

    from orderstream.topology import ORDERS_EVENTS

    java_settings = env.fresh()
    out = subprocess.run(
        [
            env.java,
            "-Xmx512m",
            "-cp",
            env.distribution.classpath,
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            java_settings.topic(ORDERS_EVENTS),
            "--num-records",
            str(records),
            "--record-size",
            str(record_size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={settings.effective_bootstrap}",
            "acks=all",
            "enable.idempotence=true",
            "compression.type=lz4",
            "linger.ms=20",
            "batch.size=1000000",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = out.stdout.strip().splitlines()
    match = re.search(r"([\d.]+) records/sec", lines[-1] if lines else "")
    java_rate = float(match.group(1)) if match else None
    return [
        {
            "benchmark": "produce, Python: encode + CloudEvents headers + produce of pre-built OrderPlaced events",
            "value": round(python_rate),
            "unit": "events/s",
            "goal": ">= 50,000",
            "met": python_rate >= 50_000,
            "notes": f"{records:,} records, ~{record_size} B values + 9 headers, idempotent, acks=all, lz4, "
            "linger 20 ms, poll(0) every 1000, flushed; after 5,000 untimed warm-up records",
        },
        {
            "benchmark": "produce, Python load generator (`orderstream generate`: plan + encode + produce)",
            "value": round(generated.rate),
            "unit": "events/s",
            "goal": "",
            "met": None,
            "notes": (
                "plans each order (seeded random lines, uuid ids); timed from its producer's creation, PID included"
            ),
        },
        {
            "benchmark": "produce, Kafka ProducerPerformance (Java), same broker and record size",
            "value": round(java_rate) if java_rate else None,
            "unit": "events/s",
            "goal": "reference",
            "met": None,
            "notes": "acks=all, idempotent, lz4, linger 20 ms, no headers"
            if java_rate
            else f"failed: {out.stderr.strip()[-200:]}",
        },
    ]
