"""Asking the broker where a partition ends, riding out the moments when it cannot say yet (a new topic's leader not
elected, a leader moving): those errors are retried until the deadline, anything else is raised."""

from __future__ import annotations

import time
from typing import Any


def is_transient(error: Any) -> bool:
    """A KafkaError that only means "the cluster cannot say yet" (no leader yet, a leader moving, a broker
    restarting, metadata not arrived): worth retrying until a deadline."""
    from confluent_kafka import KafkaError

    return error.retriable() or error.code() in {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._UNKNOWN_PARTITION,  # the client's metadata does not know the partition yet
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.REQUEST_TIMED_OUT,
    }


def watermarks(consumer: Any, topic: str, partition: int, timeout_s: float = 30.0) -> tuple[int, int]:
    """(low, high) of a partition. For a read_committed consumer, high is the last stable offset (LSO)."""
    from confluent_kafka import KafkaException, TopicPartition

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.get_watermark_offsets(
                TopicPartition(topic, partition), max(0.1, deadline - time.monotonic()), cached=False
            )
        except KafkaException as exc:
            if not is_transient(exc.args[0]) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
