"""Dead letters for operators: list, show and retry what the runtimes wrote (kafka/dead_letters.py) to <topic>.dlq.

A retry goes back only to the consumer group that wrote the letter: it appends a retry request to the letter's own
DLQ topic, on the original partition number, addressed to that group (kafka/dead_letters.py says how the runtimes
pick it up). Nothing is appended to the original topic, which other groups read too. A request marks the letter
retried; a request that fails again gets a marker from the group's runtime, and the letter is waiting again - still
one letter. Nothing is ever deleted. A letter written by a processor's restore (its own changelog skipped a record)
cannot be retried: the group never reads its changelog as input; the record stays skipped.

Listing shows one letter per (group, original record): a letter written twice (a projector that crashed between the
dead letter and its SQL commit writes it again on restart) is recognised and shown once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from orderstream.config import Settings
from orderstream.kafka.dead_letters import (
    H_ERROR_CLASS,
    H_ERROR_MESSAGE,
    H_GROUP,
    H_OFFSET,
    H_PARTITION,
    H_READER,
    H_RETRIED,
    H_RETRY_FAILED,
    H_RETRY_GROUP,
    H_RETRY_OF,
    H_STAGE,
    H_TOPIC,
    READER_RESTORE,
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
    reader: str = ""  # "restore": skipped by a processor's restore of its own changelog
    retry_failures: int = 0  # retries that failed again (each left a marker, not a letter)

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
            "retry_failures": self.retry_failures,
            "reader": self.reader or None,
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
    retried: Counter[tuple[str, int, int]] = Counter()
    failed: Counter[tuple[str, int, int]] = Counter()
    try:
        existing = consumer.list_topics(timeout=10).topics
        dlqs = [
            settings.topic(s.name)
            for s in all_topics()
            if s.kind is TopicKind.DLQ and settings.topic(s.name) in existing
        ]
        for message in read_records(consumer, dlqs, from_beginning=True, follow=False):
            _collect(message, letters, retried, failed)
    finally:
        consumer.close()
    out, seen = [], set()
    for letter in letters:
        if (letter.group, letter.original) in seen:
            continue  # written again for the same record and group (see the module docstring)
        seen.add((letter.group, letter.original))
        where = (letter.dlq_topic, letter.dlq_partition, letter.dlq_offset)
        out.append(
            StoredLetter(
                **{**letter.__dict__, "retried": retried[where] > failed[where], "retry_failures": failed[where]}
            )
        )
    return out


def _letter_at(topic: str, position: str) -> tuple[str, int, int] | None:
    partition, _, offset = position.partition(":")
    return (topic, int(partition), int(offset)) if partition.isdigit() and offset.isdigit() else None


def _collect(
    message: Any,
    letters: list[StoredLetter],
    retried: Counter[tuple[str, int, int]],
    failed: Counter[tuple[str, int, int]],
) -> None:
    headers = {name: (value or b"").decode(errors="replace") for name, value in (message.headers() or [])}
    for name, counter in ((H_RETRIED, retried), (H_RETRY_OF, retried), (H_RETRY_FAILED, failed)):
        if name in headers:  # an old-style retried marker, a retry request, a retry that failed again
            where = _letter_at(message.topic(), headers[name])
            if where is not None:
                counter[where] += 1
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
            reader=headers.get(H_READER, ""),
        )
    )


FLUSH_TIMEOUT_S = 30.0


class RetryRefused(ValueError):
    """A letter that cannot be sent back to its group (written by a restore, or naming no group)."""


def retry(settings: Settings, letters: list[StoredLetter]) -> int:
    """Send letters back to the consumer groups that wrote them: one retry request each, appended to the letter's DLQ
    topic on the original partition number (the group's runtime reads it there; see the module docstring).

    Raises RetryRefused before producing anything when a letter cannot be retried, and RuntimeError when a request is
    refused or not acknowledged within FLUSH_TIMEOUT_S (a letter counts as retried only once its request is)."""
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config

    for letter in letters:
        if letter.reader == READER_RESTORE:
            raise RetryRefused(
                f"{letter.summary()['id']} was skipped by {letter.group}'s restore of its own changelog "
                f"{letter.original}: the group never reads it as input, so it cannot be retried (it stays skipped)"
            )
        if not letter.group:
            raise RetryRefused(f"{letter.summary()['id']} names no consumer group to send it back to")
    producer = Producer(producer_config(settings))
    errors: list[str] = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err.str())

    counts: dict[str, int] = {}
    for letter in letters:
        if letter.dlq_topic not in counts:
            counts[letter.dlq_topic] = len(
                producer.list_topics(letter.dlq_topic, timeout=10).topics[letter.dlq_topic].partitions
            )
        partition = int(letter.original.rsplit(":", 2)[1])
        if partition >= counts[letter.dlq_topic]:
            raise RetryRefused(
                f"{letter.dlq_topic} has {counts[letter.dlq_topic]} partitions, fewer than {letter.original} needs: "
                "the group could not read the retry where it reads the original (run `orderstream topics init`)"
            )
        producer.produce(
            letter.dlq_topic,
            partition=partition,
            key=letter.key.encode() if letter.key is not None else None,
            value=letter.value,
            headers=[
                *letter.headers,
                (H_RETRY_GROUP, letter.group.encode()),
                (H_RETRY_OF, f"{letter.dlq_partition}:{letter.dlq_offset}".encode()),
            ],
            on_delivery=delivered,
        )
    if unacknowledged := producer.flush(FLUSH_TIMEOUT_S):  # flush() returns how many are left
        errors += [f"not acknowledged within {FLUSH_TIMEOUT_S:.0f}s"] * unacknowledged
    if errors:
        raise RuntimeError(
            f"{len(errors)} retry request(s) could not be written: {errors[0]} (a letter whose request was not "
            "acknowledged is not marked retried: `orderstream dlq list` still shows it)"
        )
    return len(letters)
