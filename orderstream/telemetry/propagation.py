"""W3C trace context in Kafka record headers: the CloudEvents distributed-tracing extension, Kafka binary mode.

The extension's attributes `traceparent` and `tracestate` travel as the headers `ce_traceparent` and `ce_tracestate`
(CloudEvents' Kafka binding prefixes every attribute with `ce_`), with the W3C Trace Context formats as values. On
reading, a plain `traceparent` header (what OpenTelemetry's Kafka instrumentations of other languages write) is
accepted too. Anything malformed reads as "no context": a garbage header never fails a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

TRACEPARENT = "ce_traceparent"
TRACESTATE = "ce_tracestate"


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


# version-traceid-parentid-flags, lowercase hex; a later version may append fields after another "-"
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
# what nearly every header holds: a version-00 traceparent as bytes, matched without decoding it first
_TRACEPARENT_00 = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a version-00 traceparent, or None when it is not one (W3C Trace Context §3.2:
    lowercase hex, neither id all zeros; a later version is read by its first four fields)."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    return _ids(trace_hex, span_hex, flags_hex)


def _ids(trace_hex: str, span_hex: str, flags_hex: str) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a traceparent's hex fields, or None when either id is all zeros."""
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(flags_hex, 16)


_ZERO_TRACE, _ZERO_SPAN = b"0" * 32, b"0" * 16


def _parse_header(value: Any) -> tuple[bytes, bytes, int] | None:
    """A header's traceparent as (trace id, span id) in lowercase hex bytes and its flags, or None when it is not a
    valid one. A version-00 one as bytes is read straight from the bytes, slicing out the ids (a batch consumer reads
    one per record, and most of them are only ever written on, into another header or the export process's OTLP);
    anything else (text, another version, surrounding blanks) goes through parse_traceparent."""
    if isinstance(value, bytes) and _TRACEPARENT_00.fullmatch(value) is not None:
        trace_hex, span_hex = value[3:35], value[36:52]
        if trace_hex == _ZERO_TRACE or span_hex == _ZERO_SPAN:
            return None
        return trace_hex, span_hex, int(value[53:55], 16)
    parsed = parse_traceparent(_text(value))
    if parsed is None:
        return None
    trace_id, span_id, flags = parsed
    return b"%032x" % trace_id, b"%016x" % span_id, flags


_api: dict[str, Any] = {}  # the OpenTelemetry API classes, imported on first use (tracing on)


def _load_api() -> dict[str, Any]:
    if not _api:
        from opentelemetry.trace import SpanContext, TraceFlags, TraceState

        _api.update(SpanContext=SpanContext, TraceFlags=TraceFlags, TraceState=TraceState, empty=TraceState())
    return _api


# The context a record carries, as the runtimes keep it: (trace id, parent span id) as lowercase hex bytes, its sampled
# flag (0 or 1) and its trace state (a header's text, "" for none).
Remote = tuple[bytes, bytes, int, str]


def extract_remote(headers: Iterable[tuple[str, Any]] | None) -> Remote | None:
    """The context a record's headers carry (Remote), or None (no header, or a malformed one), without building a
    SpanContext or even integers: a batch consumer reads one per record, and its ids are only copied on. The headers
    become a dict in one C call (of a repeated header, the last one counts); ce_traceparent wins over a plain
    traceparent."""
    if not headers:
        return None
    named = dict(headers)
    parent = named.get(TRACEPARENT)
    if parent is not None:
        state = named.get(TRACESTATE)
    else:
        parent, state = named.get("traceparent"), named.get("tracestate")
        if parent is None:
            return None
    parsed = _parse_header(parent)
    if parsed is None:
        return None
    trace_hex, span_hex, flags = parsed
    tracestate = ""
    if state:  # rare: validated (and normalised) by the API's parser; a malformed one reads as empty
        try:
            tracestate = _load_api()["TraceState"].from_header([_text(state)]).to_header()
        except ValueError:
            tracestate = ""
    return trace_hex, span_hex, flags & 0x01, tracestate


def context_of(remote: Remote) -> Any:
    """The remote SpanContext of extract_remote()'s values."""
    api = _load_api()
    trace_hex, span_hex, flags, state = remote
    trace_state = api["TraceState"].from_header([state]) if state else api["empty"]
    return api["SpanContext"](
        int(trace_hex, 16),
        int(span_hex, 16),
        is_remote=True,
        trace_flags=api["TraceFlags"](flags),
        trace_state=trace_state,
    )


def extract(headers: Iterable[tuple[str, Any]] | None) -> Any:
    """The remote SpanContext a record's (or a request's) headers carry, or None."""
    remote = extract_remote(headers)
    return None if remote is None else context_of(remote)


def _text(value: Any) -> str:
    return value.decode("ascii", errors="replace") if isinstance(value, bytes | bytearray) else str(value)


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
