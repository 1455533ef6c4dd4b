"""Dead letters for operators: list, show and retry what the runtimes wrote (kafka/dead_letters.py) to <topic>.dlq.

A retry re-publishes the original key, value and headers to the original topic and then appends a small marker
record to the DLQ (empty value, header dlq.retried = "<dlq partition>:<dlq offset>"), so the log says what was
retried and when, and nothing is ever deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from orderstream.config import Settings
from orderstream.kafka.dead_letters import (
    H_ERROR_CLASS,
    H_ERROR_MESSAGE,
    H_GROUP,
    H_OFFSET,
    H_PARTITION,
    H_RETRIED,
    H_STAGE,
    H_TOPIC,
)
from orderstream.topology import TopicKind, all_topics


@dataclass(frozen=True)
class StoredLetter:
    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    key: str | None
    original: str  # topic:partition:offset
    group: str
    stage: str
    error_class: str
    error_message: str
    retried: bool
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def summary(self) -> dict[str, Any]:
        return {
            "id": f"{self.dlq_topic}:{self.dlq_partition}:{self.dlq_offset}",
            "key": self.key,
            "original": self.original,
            "group": self.group,
            "stage": self.stage,
            "error_class": self.error_class,
            "error_message": self.error_message,
            "retried": self.retried,
            "value_bytes": len(self.value or b""),
        }


def read_letters(settings: Settings) -> list[StoredLetter]:
    """Every dead letter of every DLQ topic, oldest first per partition, each marked retried or not.

    Raises KafkaException when the broker does not answer (the CLI checks it first: `orderstream dlq` fails fast)."""
    from confluent_kafka import Consumer

    from orderstream.kafka.clients import consumer_config
    from orderstream.kafka.reading import read_records

    consumer = Consumer(consumer_config(settings, f"orderstream.dlq-reader.{uuid.uuid4().hex[:8]}"))
    letters: list[StoredLetter] = []
    retried: set[tuple[str, int, int]] = set()
    try:
        existing = consumer.list_topics(timeout=10).topics
        dlqs = [
            settings.topic(s.name)
            for s in all_topics()
            if s.kind is TopicKind.DLQ and settings.topic(s.name) in existing
        ]
        for message in read_records(consumer, dlqs, from_beginning=True, follow=False):
            _collect(message, letters, retried)
    finally:
        consumer.close()
    return [
        StoredLetter(
            **{**letter.__dict__, "retried": (letter.dlq_topic, letter.dlq_partition, letter.dlq_offset) in retried}
        )
        for letter in letters
    ]


def _collect(message: Any, letters: list[StoredLetter], retried: set[tuple[str, int, int]]) -> None:
    headers = {name: (value or b"").decode(errors="replace") for name, value in (message.headers() or [])}
    if H_RETRIED in headers:
        partition, offset = headers[H_RETRIED].split(":")
        retried.add((message.topic(), int(partition), int(offset)))
        return
    key = message.key()
    letters.append(
        StoredLetter(
            dlq_topic=message.topic(),
            dlq_partition=message.partition(),
            dlq_offset=message.offset(),
            key=key.decode(errors="replace") if key is not None else None,
            original=f"{headers.get(H_TOPIC)}:{headers.get(H_PARTITION)}:{headers.get(H_OFFSET)}",
            group=headers.get(H_GROUP, ""),
            stage=headers.get(H_STAGE, ""),
            error_class=headers.get(H_ERROR_CLASS, ""),
            error_message=headers.get(H_ERROR_MESSAGE, ""),
            retried=False,
            value=message.value(),
            headers=[(n, v) for n, v in (message.headers() or []) if not n.startswith("dlq.")],
        )
    )


FLUSH_TIMEOUT_S = 30.0


def retry(settings: Settings, letters: list[StoredLetter]) -> int:
    """Re-publish letters to their original topics (idempotent producer), then mark each retried in its DLQ.

    Raises RuntimeError when a record is refused or not acknowledged within FLUSH_TIMEOUT_S: a letter is marked
    retried only once its re-publication is acknowledged."""
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config

    producer = Producer(producer_config(settings))
    errors: list[str] = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err.str())

    for letter in letters:
        original_topic = letter.original.split(":")[0]
        producer.produce(
            original_topic,
            key=letter.key.encode() if letter.key is not None else None,
            value=letter.value,
            headers=letter.headers,
            on_delivery=delivered,
        )
    if unacknowledged := producer.flush(FLUSH_TIMEOUT_S):  # flush() returns how many are left
        errors += [f"not acknowledged within {FLUSH_TIMEOUT_S:.0f}s"] * unacknowledged
    if errors:
        raise RuntimeError(
            f"{len(errors)} letters could not be re-published: {errors[0]} (none is marked "
            "retried: `orderstream dlq list` still shows them)"
        )
    for letter in letters:
        producer.produce(
            letter.dlq_topic,
            key=letter.key.encode() if letter.key is not None else None,
            value=b"",
            headers=[(H_RETRIED, f"{letter.dlq_partition}:{letter.dlq_offset}".encode())],
            on_delivery=delivered,
        )
    if unacknowledged := producer.flush(FLUSH_TIMEOUT_S):  # flush() returns how many are left
        errors += [f"not acknowledged within {FLUSH_TIMEOUT_S:.0f}s"] * unacknowledged
    if errors:
        raise RuntimeError(f"re-published, but {len(errors)} retry markers could not be written: {errors[0]}")
    return len(letters)
