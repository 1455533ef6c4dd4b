"""A consumer's lag without a broker round trip: the high watermark librdkafka cached from its last fetch."""

from __future__ import annotations

from typing import Any


def cached_high_watermark(consumer: Any, topic: str, partition: int) -> int | None:
    """The partition's high watermark as of the consumer's last fetch response, or None when it has none cached."""
    from confluent_kafka import KafkaException, TopicPartition

    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
    except KafkaException:  # nothing cached yet, or the partition just went away: the lag is unknown this time
        return None
    return high if high is not None and high >= 0 else None
