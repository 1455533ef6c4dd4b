"""Asking the broker where a partition ends, riding out the moments when it cannot say yet (a new topic's leader not
elected, a leader moving): those errors are retried until the deadline, anything else is raised."""

from __future__ import annotations

import time
from typing import Any


def watermarks(consumer: Any, topic: str, partition: int, timeout_s: float = 30.0) -> tuple[int, int]:
    """(low, high) of a partition. For a read_committed consumer, high is the last stable offset (LSO)."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    retriable = {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._UNKNOWN_PARTITION,  # the client's metadata does not know the partition yet
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.REQUEST_TIMED_OUT,
    }
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.get_watermark_offsets(
                TopicPartition(topic, partition), max(0.1, deadline - time.monotonic()), cached=False
            )
        except KafkaException as exc:
            error = exc.args[0]
            if (error.code() not in retriable and not error.retriable()) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
