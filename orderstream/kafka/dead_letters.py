"""Writing dead letters: a record that cannot be decoded, validated or applied goes to <topic>.dlq, unchanged.

The dead letter keeps the raw key, value, headers and timestamp of the original record, plus headers naming where it
came from and why (never any payload data in the message):
  dlq.topic, dlq.partition, dlq.offset   the original position
  dlq.group                              the consumer group that failed on it
  dlq.stage                              decode, validate or apply
  dlq.error.class, dlq.error.message     what went wrong
  dlq.reader                             "restore" when the processor's restore of its own changelog skipped it
Both runtimes write them (the processor inside its batch's transaction, the projector before its SQL commit);
`ops/dlq.py` lists, shows and retries them.

Retry goes back to the one group that wrote the letter, never to the shared topic: `dlq retry` appends a retry
request to the same DLQ topic, on the original partition number (dlq.retry.group = that group, dlq.retry.of =
"<dlq partition>:<dlq offset>" of the letter, the letter's key, value and original headers). Every runtime also
consumes the DLQ topics of its input topics (co-partitioned: same partition count), skips whatever is not a retry
request for its own group, and handles a request for it as the original record. A request that fails again writes
no new letter: a marker (dlq.retry.failed = the same "<partition>:<offset>", with the group, stage and error), so the
letter stays one letter, waiting again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orderstream.topology import dlq_name

STAGES = ("decode", "validate", "apply")
H_TOPIC, H_PARTITION, H_OFFSET, H_GROUP = "dlq.topic", "dlq.partition", "dlq.offset", "dlq.group"
H_STAGE, H_ERROR_CLASS, H_ERROR_MESSAGE, H_RETRIED = "dlq.stage", "dlq.error.class", "dlq.error.message", "dlq.retried"
H_READER = "dlq.reader"
H_RETRY_GROUP, H_RETRY_OF, H_RETRY_FAILED = "dlq.retry.group", "dlq.retry.of", "dlq.retry.failed"
READER_RESTORE = "restore"
DLQ_SUFFIX = ".dlq"
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


def is_dead_letter_topic(topic: str) -> bool:
    return topic.endswith(DLQ_SUFFIX)


def header(message: Any, name: str) -> str | None:
    """A header of a consumed record as text (the last one of that name), or None."""
    found = None
    for key, value in message.headers() or []:
        if key == name:
            found = (value or b"").decode(errors="replace")
    return found


def retry_group(message: Any) -> str | None:
    """The group a record read from a DLQ topic is a retry request for; None for letters and markers."""
    return header(message, H_RETRY_GROUP) if is_dead_letter_topic(message.topic()) else None


def dead_letter(message: Any, group: str, stage: str, error: BaseException, reader: str | None = None) -> DeadLetter:
    """The dead letter of a consumed confluent_kafka Message that failed at a stage. A retry request (read from a
    DLQ topic) that failed again gets a retry-failed marker in its own DLQ topic instead of a second letter."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    if retry_group(message) is not None:
        return _retry_failed(message, group, stage, error)
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
        *([(H_READER, reader.encode())] if reader else []),
    ]
    return DeadLetter(
        dlq_name(message.topic()), message.key(), message.value(), headers, timestamp if timestamp_type else None
    )


def _retry_failed(message: Any, group: str, stage: str, error: BaseException) -> DeadLetter:
    headers = [
        (H_RETRY_FAILED, (header(message, H_RETRY_OF) or "").encode()),
        (H_GROUP, group.encode()),
        (H_STAGE, stage.encode()),
        (H_ERROR_CLASS, type(error).__name__.encode()),
        (H_ERROR_MESSAGE, safe_error_message(error).encode()),
    ]
    return DeadLetter(message.topic(), message.key(), b"", headers, None)


def produce_dead_letter(producer: Any, letter: DeadLetter) -> None:
    """Produce a dead letter (inside the caller's transaction, if it has one)."""
    kwargs = {"timestamp": letter.timestamp_ms} if letter.timestamp_ms else {}
    producer.produce(letter.topic, key=letter.key, value=letter.value, headers=letter.headers, **kwargs)
