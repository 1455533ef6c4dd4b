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
_TRACEPARENT_00 = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a version-00 traceparent, or None when it is not one (W3C Trace Context §3.2:
    lowercase hex, neither id all zeros; a later version is read by its first four fields). One regular expression
    match: every record of a traced batch goes through here."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    return _ids(trace_hex, span_hex, flags_hex)


def _ids(trace_hex: str | bytes, span_hex: str | bytes, flags_hex: str | bytes) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a traceparent's hex fields, or None when either id is all zeros."""
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(flags_hex, 16)


def _parse_header(value: Any) -> tuple[int, int, int] | None:
    """parse_traceparent() of a header's value: a version-00 one as bytes straight from the bytes (a batch consumer
    reads one per record), anything else (text, another version, surrounding blanks) through parse_traceparent."""
    if isinstance(value, bytes):
        match = _TRACEPARENT_00.fullmatch(value)
        if match is not None:
            return _ids(*match.groups())
    return parse_traceparent(_text(value))


_api: dict[str, Any] = {}  # the OpenTelemetry API classes, imported on first use (tracing on)


def _load_api() -> dict[str, Any]:
    if not _api:
        from opentelemetry.trace import SpanContext, TraceFlags, TraceState

        _api.update(SpanContext=SpanContext, TraceFlags=TraceFlags, TraceState=TraceState, empty=TraceState())
    return _api


def extract_ids(headers: Iterable[tuple[str, Any]] | None) -> tuple[int, int, int, str] | None:
    """(trace id, span id, sampled flag, trace state) of the context a record's headers carry, or None (no header,
    or a malformed one), without building a SpanContext: a batch consumer reads one per record, and most of them only
    become a record span's parent ids. The headers become a dict in one C call (of a repeated header, the last one
    counts); ce_traceparent wins over a plain traceparent."""
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
    trace_id, span_id, flags = parsed
    tracestate = ""
    if state:  # rare: validated (and normalised) by the API's parser; a malformed one reads as empty
        try:
            tracestate = _load_api()["TraceState"].from_header([_text(state)]).to_header()
        except ValueError:
            tracestate = ""
    return trace_id, span_id, flags & 0x01, tracestate


def context_of(ids: tuple[int, int, int, str]) -> Any:
    """The remote SpanContext of extract_ids()'s values."""
    api = _load_api()
    trace_id, span_id, flags, state = ids
    trace_state = api["TraceState"].from_header([state]) if state else api["empty"]
    return api["SpanContext"](
        trace_id, span_id, is_remote=True, trace_flags=api["TraceFlags"](flags), trace_state=trace_state
    )


def extract(headers: Iterable[tuple[str, Any]] | None) -> Any:
    """The remote SpanContext a record's (or a request's) headers carry, or None."""
    ids = extract_ids(headers)
    return None if ids is None else context_of(ids)


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
