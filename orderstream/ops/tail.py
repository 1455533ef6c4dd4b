"""Reading topics for people and scripts: decode every record and yield it with its position and headers.

Nothing is committed: tail uses a throwaway group and assigns partitions itself, so it never disturbs a service.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orderstream.config import Settings


@dataclass(frozen=True)
class TailedRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    headers: dict[str, str]
    type: str
    body: dict[str, Any] | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def jsonable(value: Any) -> Any:
    """A dataclass message as plain JSON-ready values (enums by value, datetimes in ISO 8601)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def tail(
    settings: Settings,
    topics: list[str],
    from_beginning: bool = False,
    follow: bool = True,
    correlation_id: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[TailedRecord]:
    """Records of the given (unprefixed) topics, decoded. Without follow, stops at the end offsets seen at start.

    Raises LookupError for a missing topic, RuntimeError for a record the broker reports an error for, and
    KafkaException when the broker does not answer (`orderstream tail` checks that first, to fail in seconds)."""
    from confluent_kafka import Consumer

    from orderstream.kafka.clients import consumer_config
    from orderstream.kafka.reading import read_records
    from orderstream.kafka.topics import topic_exists
    from orderstream.schemas.cloudevents import read_headers
    from orderstream.schemas.errors import DecodeError
    from orderstream.schemas.wire import codec_for

    codec = codec_for(settings)
    consumer = Consumer(consumer_config(settings, f"orderstream.tail.{uuid.uuid4().hex[:12]}"))
    try:
        full = [settings.topic(name) for name in topics]
        for topic in full:
            if not topic_exists(consumer, topic, timeout_s=10):
                raise LookupError(f"topic {topic} does not exist (run `orderstream topics init`)")
        for message in read_records(
            consumer, full, from_beginning=from_beginning, follow=follow, should_stop=should_stop
        ):
            headers = read_headers(message.headers())
            if correlation_id is not None and headers.get("ce_correlationid") != correlation_id:
                continue
            try:
                decoded = codec.decode(message.value())
                kind, body, error = type(decoded).__name__, jsonable(decoded), None
            except DecodeError as exc:
                kind, body, error = "undecodable", None, str(exc)
            key = message.key()
            yield TailedRecord(
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                timestamp_ms=message.timestamp()[1],
                key=key.decode(errors="replace") if key is not None else None,
                headers=headers,
                type=kind,
                body=body,
                error=error,
            )
    finally:
        consumer.close()
