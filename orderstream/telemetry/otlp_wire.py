"""Spans in OTLP's protobuf wire format, written as bytes straight from the plain values the export pipe carries.

Building the protobuf messages of a record span (a Span, four KeyValues and their AnyValues, then copying the shared
ones in) cost the export process 28 us of Python per span on this machine, and rebuilding an SDK span (a batch or
SQL span) for the SDK's encoder 37 us; writing the same fields as bytes costs 3.4 and 8.2 us (in a warm loop;
docs/OBSERVABILITY.md "Cost"). The export process runs beside the broker and the services on a small machine, so its
CPU is theirs too.

Protobuf's wire format makes this simple and safe for the few shapes involved: a message is its fields one after
another, each a key (field number and wire type) and a value, and a repeated field is its elements' fields repeated,
so what all spans of a batch share (their attributes, the link to the batch's span) is encoded once and pasted into
each span, and a request is its ResourceSpans one after another. The field numbers are OTLP's
(opentelemetry/proto/trace/v1/trace.proto, common.proto, resource.proto), stable since OTLP 1.0;
tests/unit/test_span_export.py parses the bytes with the official classes and checks them against the SDK's encoder.
"""

from __future__ import annotations

import logging
import struct
from binascii import unhexlify
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orderstream.telemetry.record_spans import STATUS_ERROR, STATUS_UNSET

log = logging.getLogger(__name__)

_VARINT, _FIXED64, _DELIMITED, _FIXED32 = 0, 1, 2, 5
_SMALL = [bytes((n,)) for n in range(128)]  # one-byte varints
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")

_SPAN_KIND_CONSUMER = 5  # opentelemetry.proto.trace.v1.Span.SpanKind (the SDK's SpanKind.CONSUMER is 4)
_HAS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags: the parent (or link) context says whether it is remote, and is


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    value &= 0xFFFFFFFFFFFFFFFF  # a negative int64 is its two's complement: ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _field(number: int, body: bytes) -> bytes:
    """A length-delimited field (bytes, a string's UTF-8, an embedded message)."""
    return _key(number, _DELIMITED) + _varint(len(body)) + body


def _text(number: int, value: str) -> bytes:
    return _field(number, value.encode("utf-8", errors="replace"))


# --- common.proto ------------------------------------------------------------------------------------------------


def any_value(value: Any) -> bytes:
    """An AnyValue's body, as the SDK's encoder writes each type: string_value 1, bool_value 2, int_value 3,
    double_value 4, array_value 5 (values 1), kvlist_value 6 (values 1), bytes_value 7; None is an empty AnyValue.
    An int outside int64 raises ValueError (the SDK's encoder refuses it too)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _key(2, _VARINT) + _SMALL[int(value)]
    if isinstance(value, str):
        return _text(1, value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{value} does not fit an int64 attribute")
        return _key(3, _VARINT) + _varint(value)
    if isinstance(value, float):
        return _key(4, _FIXED64) + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Mapping):
        return _field(6, b"".join(_field(1, key_value(str(k), v)) for k, v in value.items()))
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, any_value(v)) for v in value))
    raise ValueError(f"an attribute of type {type(value).__name__}")


def key_value(key: str, value: Any) -> bytes:
    """A KeyValue message's body: key 1, value 2."""
    return _text(1, key) + _field(2, any_value(value))


def _attributes(number: int, attributes: Iterable[tuple[str, Any]]) -> bytes:
    """The repeated KeyValue field `number` of a message, one element per attribute; one that cannot be encoded is
    left out and logged, as the SDK's encoder does."""
    out = []
    for key, value in attributes:
        try:
            out.append(_field(number, key_value(key, value)))
        except ValueError as exc:
            log.warning("span attribute %s left out of the export: %s", key, exc)
    return b"".join(out)


# --- trace.proto -------------------------------------------------------------------------------------------------

# Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6, start 7, end 8, attributes 9,
# links 13, status 15, flags 16.
_TRACE_ID = _key(1, _DELIMITED) + _SMALL[16]
_SPAN_ID = _key(2, _DELIMITED) + _SMALL[8]
_PARENT_ID = _key(4, _DELIMITED) + _SMALL[8]
_KIND = _key(6, _VARINT) + _SMALL[_SPAN_KIND_CONSUMER]
_START, _END = _key(7, _FIXED64), _key(8, _FIXED64)
_FLAGS_LOCAL = _key(16, _FIXED32) + _U32.pack(_HAS_REMOTE)
_FLAGS_REMOTE = _key(16, _FIXED32) + _U32.pack(_HAS_REMOTE | _IS_REMOTE)
_SPAN = _key(2, _DELIMITED)  # ScopeSpans.spans


def _head(trace_id: bytes, span_id: bytes, state: str, parent_id: bytes | None) -> list[bytes]:
    """A Span's first fields: its ids (16 and 8 bytes), its trace state (when any) and its parent's span id (when it
    has a parent)."""
    parts = [_TRACE_ID, trace_id, _SPAN_ID, span_id]
    if state:
        parts.append(_text(3, state))
    if parent_id:
        parts += (_PARENT_ID, parent_id)
    return parts


def _link(trace_id: int, span_id: int, remote: bool, attributes: bytes = b"") -> bytes:
    """A Span's link (field 13): trace and span id, attributes 4 (already encoded), flags 6."""
    flags = _HAS_REMOTE | _IS_REMOTE if remote else _HAS_REMOTE
    body = _field(1, trace_id.to_bytes(16, "big")) + _field(2, span_id.to_bytes(8, "big")) + attributes
    return _field(13, body + _key(6, _FIXED32) + _U32.pack(flags))


def _status(code: int, description: str | None) -> bytes:
    """A Span's status (field 15), always present (an empty one for UNSET, as the SDK's encoder writes it)."""
    body = _text(2, description) if description else b""
    if code:
        body += _key(3, _VARINT) + _varint(code)
    return _field(15, body)


def _attribute_prefix(key: str) -> bytes:
    """What starts a KeyValue's body whose key is `key`: the key, then the value field's key (its length follows)."""
    return _text(1, key) + _key(2, _DELIMITED)


_OFFSET = _attribute_prefix("messaging.kafka.offset")
_RECORD_KEY = _attribute_prefix("messaging.kafka.message.key")
_ATTRIBUTE = _key(9, _DELIMITED)
_INT_VALUE, _STRING_VALUE = _key(3, _VARINT), _key(1, _DELIMITED)


def record_spans(group: tuple) -> bytes:
    """The Span messages (each as field 2 of a ScopeSpans, ready to be pasted into one) of a RecordSpans' frame."""
    name, _, shared, (link_trace, link_span, _), _, rows = group
    shared_attributes = _attributes(9, shared.items())
    link = _link(link_trace, link_span, remote=False)
    named: dict[str, bytes] = {}  # per topic: the name and kind fields (they come before the times)
    destinations: dict[tuple[str, int], bytes] = {}  # per topic and partition: the shared attributes and those two
    varint, small, status_ok = _varint, _SMALL, _status(STATUS_UNSET, None)
    out = []
    for trace_hex, span_id, parent_hex, _, state, start, end, topic, partition, offset, key, error in rows:
        head = named.get(topic)
        if head is None:
            head = named[topic] = _text(5, f"{name} {topic}") + _KIND
        where = destinations.get((topic, partition))
        if where is None:
            where = destinations[(topic, partition)] = (
                shared_attributes
                + _field(9, key_value("messaging.destination.name", topic))
                + _field(9, key_value("messaging.destination.partition.id", str(partition)))
            )
        offset_value = _INT_VALUE + varint(offset)
        offset_body = _OFFSET + small[len(offset_value)] + offset_value
        key_text = key.decode("utf-8", errors="replace").encode() if key else b""
        key_value_ = _STRING_VALUE + varint(len(key_text)) + key_text
        key_body = _RECORD_KEY + varint(len(key_value_)) + key_value_
        # a row's trace id and parent span id are hex (record_spans.py)
        parts = _head(
            unhexlify(trace_hex), span_id.to_bytes(8, "big"), state, unhexlify(parent_hex) if parent_hex else None
        )
        parts += (
            head,
            _START,
            _U64.pack(start),
            _END,
            _U64.pack(end),
            where,
            _ATTRIBUTE,
            varint(len(offset_body)),
            offset_body,
            _ATTRIBUTE,
            varint(len(key_body)),
            key_body,
        )
        if error is None:
            parts += (link, status_ok)
        else:
            message, error_attributes = error
            parts += (_attributes(9, error_attributes.items()), link, _status(STATUS_ERROR, message))
        parts.append(_FLAGS_REMOTE if parent_hex else _FLAGS_LOCAL)
        span = b"".join(parts)
        out += (_SPAN, varint(len(span)), span)
    return b"".join(out)


def compacted_span(span: tuple) -> bytes:
    """The Span message (field 2 of a ScopeSpans) of a span in export.compact()'s form, as the SDK's encoder writes
    its ReadableSpan: events 11 (time 1, name 2, attributes 3), links 13 (trace and span id, attributes 4, flags 6),
    the dropped counts 10, 12 and 14."""
    name, own, parent, kind, start, end, attributes, links, events, (code, description), _, _, dropped = span
    trace_id, span_id, _, _, state = own
    parent_id = None if parent is None or not parent[1] else parent[1].to_bytes(8, "big")
    parts = _head(trace_id.to_bytes(16, "big"), span_id.to_bytes(8, "big"), state, parent_id)
    parts += (_text(5, name), _key(6, _VARINT), _varint(kind + 1))  # the SDK's SpanKind is the proto's minus one
    parts += (_START, _U64.pack(start), _END, _U64.pack(end), _attributes(9, attributes.items()))
    if dropped[0]:
        parts += (_key(10, _VARINT), _varint(dropped[0]))
    for event_name, timestamp, event_attributes in events:
        event = (
            _key(1, _FIXED64) + _U64.pack(timestamp) + _text(2, event_name) + _attributes(3, event_attributes.items())
        )
        parts.append(_field(11, event))
    if dropped[1]:
        parts += (_key(12, _VARINT), _varint(dropped[1]))
    for (link_trace, link_span, _, remote, _), link_attributes in links:
        parts.append(_link(link_trace, link_span, remote, _attributes(4, link_attributes.items())))
    if dropped[2]:
        parts += (_key(14, _VARINT), _varint(dropped[2]))
    parts.append(_status(code, description))
    parts.append(_FLAGS_REMOTE if parent is not None and parent[3] else _FLAGS_LOCAL)
    return _field(2, b"".join(parts))


def request(resources: list[tuple[dict[str, Any], str]], compacted: list[tuple], groups: list[tuple]) -> bytes:
    """An ExportTraceServiceRequest of a frame (export.encode()'s values): one ResourceSpans per resource, with one
    ScopeSpans per instrumentation scope, in the order they first appear, as the SDK's encoder groups them."""
    by_resource: dict[int, dict[tuple, list[bytes]]] = {}
    for span in compacted:
        by_resource.setdefault(span[11], {}).setdefault(span[10], []).append(compacted_span(span))
    for group in groups:
        _, scope_name, _, _, resource, _ = group
        by_resource.setdefault(resource, {}).setdefault((scope_name, None, None), []).append(record_spans(group))
    out = []
    for resource, scopes in by_resource.items():
        attributes, schema_url = resources[resource]
        body = _field(1, _attributes(1, attributes.items()))
        for scope, spans in scopes.items():
            scope_spans = _field(1, b"" if scope is None else _scope(*scope)) + b"".join(spans)
            if scope is not None and scope[2]:
                scope_spans += _text(3, scope[2])
            body += _field(2, scope_spans)
        if schema_url:
            body += _text(3, schema_url)
        out.append(_field(1, body))
    return b"".join(out)


def _scope(name: str, version: str | None, _schema_url: str | None) -> bytes:
    """An InstrumentationScope's body: name 1, version 2."""
    return (_text(1, name) if name else b"") + (_text(2, version) if version else b"")
