"""The main job: drive the pipeline end to end on the local broker and show what happened."""

from __future__ import annotations

import uuid

from orderstream.clients import consumer_config, producer_config
from orderstream.config import Settings


def run_demo(settings: Settings, echo=print) -> None:
    """Produce a few records to orders.commands and read them back (the pipeline grows here issue by issue)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = settings.topic("orders.commands")
    producer = Producer(producer_config(settings))
    keys = [f"demo-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    delivered = []
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"hello", on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(30)
    failed = [err for err, _ in delivered if err is not None]
    if failed or len(delivered) != len(keys):
        raise RuntimeError(f"{len(failed)} records were not delivered: {failed[:1]}")
    positions = [(m.partition(), m.offset()) for _, m in delivered]
    echo(f"produced {len(keys)} records to {topic} at (partition, offset) {positions}")

    consumer = Consumer(consumer_config(settings, f"demo-{uuid.uuid4().hex[:8]}"))
    first = {}
    for partition, offset in positions:
        first[partition] = min(offset, first.get(partition, offset))
    consumer.assign([TopicPartition(topic, p, o) for p, o in first.items()])
    seen = set()
    while len(seen) < len(keys):
        for message in consumer.consume(100, timeout=1.0):
            if message.error() is None and message.key().decode() in keys:
                seen.add(message.key().decode())
    consumer.close()
    echo(f"read back all {len(seen)} records")
