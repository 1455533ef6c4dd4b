"""Garbage records for the poison-policy tests: what may land on any topic (bad magic, an unknown schema fingerprint, a
truncated body, no key), plus valid events that do not follow their key's state (a repeated version, a skipped one).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from orderstream.config import Settings
from orderstream.kafka.clients import producer_config
from orderstream.schemas.codec import Codec

CODEC = Codec()
UNDECODABLE = ("bad-magic", "unknown-fingerprint", "truncated")


@dataclass(frozen=True)
class Garbage:
    """One record to write: what kind of garbage it is, its key and value (and headers, for a copy)."""

    kind: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


def undecodable(key: bytes, sample: Any) -> list[Garbage]:
    """The three ways a value cannot be decoded; `sample` is any valid message (its encoding is cut and altered)."""
    encoded = CODEC.encode(sample)
    return [
        Garbage("bad-magic", key, b"\x02\x04junk"),
        Garbage("unknown-fingerprint", key, b"\xc3\x01" + bytes(range(8)) + encoded[10:]),
        Garbage("truncated", key, encoded[: len(encoded) // 2]),
    ]


def repeated(record: Any) -> Garbage:
    """A byte-for-byte copy of a consumed record (what `replay topic --force` back into its topic writes)."""
    return Garbage("repeated", record.key(), record.value(), list(record.headers() or []))


def skipped(event: Any, by: int = 2) -> Garbage:
    """A valid event whose version skips ahead of its key's (a new event id, so no idempotency memory knows it)."""
    forged = dataclasses.replace(event, version=event.version + by, event_id=str(uuid.uuid4()))
    return Garbage("skipped", event.aggregate_id.encode(), CODEC.encode(forged), CODEC.headers(forged, "garbage"))


def write(settings: Settings, topic: str, records: list[Garbage]) -> list[tuple[str, int, int]]:
    """Produce the records (not transactional, like any outside writer); returns (kind, partition, offset) each."""
    producer = Producer(producer_config(settings))
    out: dict[int, tuple[int, int]] = {}
    errors: list[Any] = []
    for index, garbage in enumerate(records):

        def delivered(err, msg, index=index):
            if err is not None:
                errors.append(err)
            else:
                out[index] = (msg.partition(), msg.offset())

        producer.produce(
            settings.topic(topic), key=garbage.key, value=garbage.value, headers=garbage.headers, on_delivery=delivered
        )
    assert producer.flush(30) == 0 and not errors, errors
    return [(g.kind, *out[i]) for i, g in enumerate(records)]
