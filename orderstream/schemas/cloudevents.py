"""CloudEvents 1.0 Kafka protocol binding, binary content mode: the message's attributes as ce_* record headers.

The record value is the data (Avro single-object encoding); the headers say what it is without decoding it, so any
tool (kcat, kafka-console-consumer, a Java client) can route, filter and trace records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/avro"
_UTC = UTC


def rfc3339(moment: datetime) -> str:
    """A UTC timestamp in RFC 3339, microsecond precision, with a Z: 2024-05-01T12:00:00.000000Z."""
    if moment.tzinfo is not _UTC:
        moment = moment.astimezone(_UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # a UTC isoformat always ends with +00:00


_EVENT, _COMMAND, _REPLY = 0, 1, 2
_KINDS: dict[type, int] = {}
_SPEC_VERSION_HEADER = ("ce_specversion", SPEC_VERSION.encode())
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
_SOURCES: dict[str, tuple[str, bytes]] = {}  # source -> its header, made once (a process has a handful)
_TYPES: dict[bytes, tuple[str, bytes]] = {}


def _kind_of(cls: type) -> int:
    kind = _KINDS.get(cls)
    if kind is None:
        from orderstream.domain.commands import Command
        from orderstream.domain.events import Event

        kind = _KINDS[cls] = _EVENT if issubclass(cls, Event) else _COMMAND if issubclass(cls, Command) else _REPLY
    return kind


def binary_headers(
    message: Any, ce_type: bytes, source: str, content_type: tuple[str, bytes] | None = None
) -> list[tuple[str, bytes]]:
    """The CloudEvents attributes of an event, a command or a reply as Kafka record headers (UTF-8 values):
    ce_specversion, ce_id (a command's id; a reply's is <command id>/reply), ce_source, ce_type, ce_time, ce_subject
    (the aggregate id), content-type (the header `content_type`; single-object Avro unless told), ce_correlationid and
    ce_causationid (a command caused itself to be handled). Built directly as bytes: the produce hot path."""
    kind = _kind_of(type(message))
    if kind == _EVENT:
        event_id, time, causation = message.event_id, message.occurred_at, message.causation_id
    elif kind == _COMMAND:
        event_id, time, causation = message.command_id, message.issued_at, message.command_id
    else:
        event_id, time, causation = f"{message.command_id}/reply", message.replied_at, message.command_id
    if time.tzinfo is not _UTC:
        time = time.astimezone(_UTC)
    source_header = _SOURCES.get(source)
    if source_header is None:
        source_header = _SOURCES[source] = ("ce_source", source.encode())
    type_header = _TYPES.get(ce_type)
    if type_header is None:
        type_header = _TYPES[ce_type] = ("ce_type", ce_type)
    return [
        _SPEC_VERSION_HEADER,
        ("ce_id", event_id.encode()),
        source_header,
        type_header,
        ("ce_time", (time.isoformat(timespec="microseconds")[:-6] + "Z").encode()),
        ("ce_subject", message.aggregate_id.encode()),
        content_type or _CONTENT_TYPE_HEADER,
        ("ce_correlationid", message.correlation_id.encode()),
        ("ce_causationid", causation.encode()),
    ]


def read_headers(headers: Iterable[tuple[str, bytes | str | None]] | None) -> dict[str, str]:
    """Record headers (as confluent_kafka returns them, possibly None) as a dict of text; the last value wins."""
    result: dict[str, str] = {}
    for name, value in headers or ():
        if value is None:
            result[name] = ""
        elif isinstance(value, str):
            result[name] = value
        else:
            result[name] = bytes(value).decode("utf-8", errors="replace")
    return result
