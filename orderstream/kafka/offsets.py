"""Asking the broker where a partition ends, riding out the moments when it cannot say yet (a new topic's leader not
elected, a leader moving): those errors are retried until the deadline, anything else is raised."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition


def is_transient(error: Any) -> bool:
    """A KafkaError that only means "the cluster cannot say yet" (no leader yet, a leader moving, a broker
    restarting, metadata not arrived): worth retrying until a deadline."""
    return error.retriable() or error.code() in {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._UNKNOWN_PARTITION,  # the client's metadata does not know the partition yet
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._DESTROY_BROKER,  # the asked broker left the cluster's metadata (it died) while the ask was out
        KafkaError.REQUEST_TIMED_OUT,
    }


ATTEMPT_S = 5.0  # one ask, at most: a leader that died keeps librdkafka waiting on it until its metadata is refreshed


def watermarks(consumer: Any, topic: str, partition: int, timeout_s: float = 30.0) -> tuple[int, int]:
    """(low, high) of a partition. For a read_committed consumer, high is the last stable offset (LSO).

    Each ask gets ATTEMPT_S at most; after a transient failure the topic's metadata is fetched again, so when the
    partition's leader was a broker that has just died, the next ask goes to the new leader (KRaft moves leadership
    about 10 s after the loss) instead of spending the whole timeout on the dead one."""
    deadline = time.monotonic() + timeout_s
    while True:
        attempt = max(0.1, min(ATTEMPT_S, deadline - time.monotonic()))
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), attempt, cached=False)
        except KafkaException as exc:
            if not is_transient(exc.args[0]) or time.monotonic() > deadline:
                raise
        with contextlib.suppress(KafkaException):  # the next ask says whether the cluster can answer yet
            consumer.list_topics(topic, timeout=max(0.1, min(ATTEMPT_S, deadline - time.monotonic())))
        time.sleep(0.1)
