"""Writing dead letters: a record that cannot be decoded, validated or applied goes to <topic>.dlq, unchanged.

The dead letter keeps the raw key, value, headers and timestamp of the original record, plus headers naming where it
came from and why (never any payload data in the message):
  dlq.topic, dlq.partition, dlq.offset   the original position
  dlq.group                              the consumer group that failed on it
  dlq.stage                              decode, validate or apply
  dlq.error.class, dlq.error.message     what went wrong
Both runtimes write them (the processor inside its batch's transaction, the projector before its SQL commit);
`ops/dlq.py` lists, shows and retries them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orderstream.topology import dlq_name

STAGES = ("decode", "validate", "apply")
H_TOPIC, H_PARTITION, H_OFFSET, H_GROUP = "dlq.topic", "dlq.partition", "dlq.offset", "dlq.group"
H_STAGE, H_ERROR_CLASS, H_ERROR_MESSAGE, H_RETRIED = "dlq.stage", "dlq.error.class", "dlq.error.message", "dlq.retried"
MAX_MESSAGE = 300


def safe_error_message(error: BaseException) -> str:
    """The error's message without payload data: quoted values are masked, and it is cut to a bounded length."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    text = re.sub(r"'[^']*'|\"[^\"]*\"|b'[^']*'", "'…'", text)
    return text[:MAX_MESSAGE]


@dataclass(frozen=True)
class DeadLetter:
    """The record to produce to the DLQ for one failed record."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None


def dead_letter(message: Any, group: str, stage: str, error: BaseException) -> DeadLetter:
    """The dead letter of a consumed confluent_kafka Message that failed at a stage."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    timestamp_type, timestamp = message.timestamp()
    headers = [
        *(message.headers() or []),
        (H_TOPIC, message.topic().encode()),
        (H_PARTITION, str(message.partition()).encode()),
        (H_OFFSET, str(message.offset()).encode()),
        (H_GROUP, group.encode()),
        (H_STAGE, stage.encode()),
        (H_ERROR_CLASS, type(error).__name__.encode()),
        (H_ERROR_MESSAGE, safe_error_message(error).encode()),
    ]
    return DeadLetter(
        dlq_name(message.topic()), message.key(), message.value(), headers, timestamp if timestamp_type else None
    )


def produce_dead_letter(producer: Any, letter: DeadLetter) -> None:
    """Produce a dead letter (inside the caller's transaction, if it has one)."""
    kwargs = {"timestamp": letter.timestamp_ms} if letter.timestamp_ms else {}
    producer.produce(letter.topic, key=letter.key, value=letter.value, headers=letter.headers, **kwargs)
