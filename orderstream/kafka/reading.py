"""Reading whole topics outside any consumer group: every record from the start (or from now on), for tools that
look at the log (tail, the dead-letter listing) and must never disturb a service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

from orderstream.kafka.offsets import watermarks


def read_records(
    consumer: Any,
    topics: list[str],
    *,
    from_beginning: bool,
    follow: bool,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Any]:
    """The records of the given (full, existing) topics, by manual assignment. Without follow it stops at the end
    offsets seen at the start; it goes by the consumer's position, since a partition that ends in transaction markers
    or aborted records never delivers its last offset. A record carrying an error is raised, never skipped."""
    assignment, ends = [], {}
    for topic in topics:
        for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = watermarks(consumer, topic, partition, 10.0)  # rides out a leader not elected yet
            ends[(topic, partition)] = high
            if follow or (from_beginning and high > low):
                assignment.append(TopicPartition(topic, partition, OFFSET_BEGINNING if from_beginning else OFFSET_END))
    if not assignment:
        return
    consumer.assign(assignment)
    remaining = {(tp.topic, tp.partition) for tp in assignment}
    while (follow or remaining) and not should_stop():
        for message in consumer.consume(500, timeout=0.5):
            if message.error() is not None:
                raise RuntimeError(f"reading {message.topic()}: {message.error().str()}")
            yield message
        if not follow:
            for topic, partition in list(remaining):
                if consumer.position([TopicPartition(topic, partition)])[0].offset >= ends[(topic, partition)]:
                    remaining.discard((topic, partition))


def consume_available(consumer: Any, max_records: int, timeout_s: float) -> list[Any]:
    """Up to max_records records: waits up to timeout_s for the first one only, then takes what has already arrived.

    consume(n, timeout) waits out its whole timeout unless n records arrive, so a reader that answers someone (a
    reply, a live event) would add that timeout to every answer when traffic is light."""
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(max_records - 1, 0)] if max_records > 1 else [first]
