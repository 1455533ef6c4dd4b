"""W3C trace context in Kafka record headers: the CloudEvents distributed-tracing extension, Kafka binary mode.

The extension's attributes `traceparent` and `tracestate` travel as the headers `ce_traceparent` and `ce_tracestate`
(CloudEvents' Kafka binding prefixes every attribute with `ce_`), with the W3C Trace Context formats as values. On
reading, a plain `traceparent` header (what OpenTelemetry's Kafka instrumentations of other languages write) is
accepted too. Anything malformed reads as "no context": a garbage header never fails a record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TRACEPARENT = "ce_traceparent"
TRACESTATE = "ce_tracestate"
_READ_PARENT = (TRACEPARENT, "traceparent")
_READ_STATE = (TRACESTATE, "tracestate")
_HEX = frozenset("0123456789abcdef")


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a version-00 traceparent, or None when it is not one (W3C Trace Context §3.2:
    lowercase hex, neither id all zeros; a later version is read by its first four fields)."""
    parts = value.strip().split("-")
    if len(parts) < 4 or parts[0] == "ff" or len(parts[0]) != 2 or (parts[0] == "00" and len(parts) != 4):
        return None
    _, trace_hex, span_hex, flags_hex = parts[:4]
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags_hex) != 2:
        return None
    if not _HEX.issuperset(parts[0] + trace_hex + span_hex + flags_hex):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(flags_hex, 16)


def _header(headers: Iterable[tuple[str, Any]], names: tuple[str, ...]) -> str | None:
    found: dict[str, Any] = {}
    for name, value in headers:
        if name in names and value is not None:
            found[name] = value
    for name in names:
        value = found.get(name)
        if value is not None:
            return value.decode("ascii", errors="replace") if isinstance(value, bytes | bytearray) else str(value)
    return None


def extract(headers: Iterable[tuple[str, Any]] | None) -> Any:
    """The remote SpanContext a record's headers carry, or None (no header, or a malformed one)."""
    if not headers:
        return None
    headers = list(headers)
    parent = _header(headers, _READ_PARENT)
    if parent is None:
        return None
    parsed = parse_traceparent(parent)
    if parsed is None:
        return None
    from opentelemetry.trace import SpanContext, TraceFlags, TraceState

    state_text = _header(headers, _READ_STATE)
    try:
        state = TraceState.from_header([state_text]) if state_text else TraceState()
    except ValueError:
        state = TraceState()
    trace_id, span_id, flags = parsed
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 0x01), trace_state=state)


def headers_of(span_context: Any) -> list[tuple[str, bytes]]:
    """The ce_traceparent (and, when not empty, ce_tracestate) headers of a span context; [] for an invalid one."""
    if span_context is None or not span_context.is_valid:
        return []
    result = [
        (
            TRACEPARENT,
            format_traceparent(span_context.trace_id, span_context.span_id, int(span_context.trace_flags)).encode(),
        )
    ]
    if span_context.trace_state:
        result.append((TRACESTATE, span_context.trace_state.to_header().encode()))
    return result
