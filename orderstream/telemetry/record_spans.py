"""Record spans as plain values: the span of each record a batch consumer decides or applies, at a few microseconds.

The SDK's own span (Tracer.start_span, Span.end, then turning it into plain values for the export process) cost
50-60 us of Python per record on this machine, as much as deciding the record itself (docs/OBSERVABILITY.md,
"Cost"). Yet a record's span has little of its own: its ids, its parent, its times, its partition, offset and key,
and a status. So a batch keeps each record's span as one row of plain values, and what all of them share (the name,
kind, attributes, the link to the batch's span, scope, resource) once. When the batch ends, the provider gets the
whole RecordSpans (tracing.Provider.emit_record_spans):
- the export processor (tracing.otlp_processor) queues it as one item and SpanPipe marshals its rows to the export
  process, which writes them straight into OTLP protobuf bytes (export.request_of, otlp_wire);
- any other span processor (a test's in-memory exporter) gets the same spans as SDK ReadableSpans, built in process
  (export.readable_record_spans).
Either way a record's span is what the SDK's Tracer.start_span would make of it: a random 64-bit span id, the
record's context as its parent (is_remote) and its trace state, a link to the batch's span, the attributes of
OpenTelemetry's messaging conventions, an ERROR status when it failed, and the same sampling (parent-based; the
provider's sampler decides for a record that carries no context).
"""

from __future__ import annotations

import random
import time
from typing import Any

from orderstream.telemetry import propagation
from orderstream.telemetry.propagation import Remote

# a row: one record's span. Its trace id and its parent's span id stay the lowercase hex bytes its record's header
# held (the parent None for a span that began its trace): the outgoing header is those bytes and a new span id,
# and the export process turns hex into the OTLP bytes (otlp_wire) as cheaply as integers.
TRACE, SPAN, PARENT, FLAGS, STATE, START, END, TOPIC, PARTITION, OFFSET, KEY, ERROR = range(12)

_random_bits, _time_ns, _TRACEPARENT = random.getrandbits, time.time_ns, propagation.TRACEPARENT  # once per record

STATUS_UNSET, STATUS_ERROR = 0, 2  # opentelemetry.trace.StatusCode values
KIND_CONSUMER = 4  # opentelemetry.trace.SpanKind.CONSUMER


class _Sampled:
    """What the SDK's batch processor reads of an item before queueing it (span.context.trace_flags.sampled): every
    row of a RecordSpans is sampled (a record whose span is not sampled gets no row)."""

    class trace_flags:  # the attribute name the SDK reads
        sampled = True


class RecordSpans:
    """The record spans of one batch: start() a record's span, end() it, then hand the whole to the provider."""

    context = _Sampled()

    def __init__(self, provider: Any, scope: str, name: str, batch_context: Any, attributes: dict[str, Any]) -> None:
        self.provider = provider
        self.scope = scope
        self.name = name  # "process" or "apply": a span is named "<name> <logical topic>"
        self.attributes = {"messaging.system": "kafka", "messaging.operation.type": "process", **attributes}
        self.link = (batch_context.trace_id, batch_context.span_id, int(batch_context.trace_flags))
        self.rows: list[list] = []

    def start(
        self,
        remote: Remote | None,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        start_time: int | None = None,
        *,
        carry: bool = True,
    ) -> tuple[list | None, list[tuple[str, bytes]]]:
        """Start the span of a record whose headers carry `remote` (propagation.extract_remote()'s values; None: a
        new trace): its row (None when it is not sampled) and the headers that carry its context on to what the
        record causes (carry=False: none, for a consumer that produces nothing, as a view)."""
        if remote is None:
            trace_id = random.getrandbits(128) or 1
            decision = self.provider.sampler.should_sample(None, trace_id, f"{self.name} {topic}")
            trace_hex = b"%032x" % trace_id
            if not decision.decision.is_sampled():  # a new trace sampled out: its context goes on, unsampled
                return None, _headers(trace_hex, b"%016x" % (random.getrandbits(64) or 1), b"00", "") if carry else []
            parent_hex, flags, state = None, 1, ""
        else:
            trace_hex, parent_hex, flags, state = remote
            if not flags:
                # Not sampled where its trace began: the parent-based sampler would drop this span. Its context goes
                # on unchanged (W3C Trace Context lets a participant that records nothing forward the traceparent),
                # so the decision holds downstream too and sampling at a ratio costs that ratio of the full price.
                return None, _headers(trace_hex, parent_hex, b"00", state) if carry else []
        span_id = _random_bits(64) or 1
        row = [trace_hex, span_id, parent_hex, flags, state, start_time or _time_ns(), 0, topic, partition, offset, key]
        row.append(None)
        self.rows.append(row)
        if not carry:
            return row, []
        # a span that began its trace has a random trace id of its own (flags 03), a child a sampled parent (01);
        # inline rather than _headers(): every traced record comes through here
        headers = [(_TRACEPARENT, b"00-%b-%016x-%b" % (trace_hex, span_id, b"01" if parent_hex else b"03"))]
        if state:
            headers.append((propagation.TRACESTATE, state.encode()))
        return row, headers

    @staticmethod
    def end(row: list | None, error: BaseException | None = None) -> None:
        """End a record's span (failed, when `error`); a row that is None (not sampled) is left alone."""
        if row is None:
            return
        row[END] = time.time_ns()
        if error is not None and row[ERROR] is None:
            row[ERROR] = (str(error), {"error.type": type(error).__name__})

    @staticmethod
    def fail(row: list | None, error: BaseException, stage: str) -> None:
        """The record was dead-lettered at `stage` (decode, validate, apply): its span ends in error."""
        if row is not None:
            kind = type(error).__name__
            row[ERROR] = (
                f"dead-lettered at {stage}: {kind}",
                {"error.type": kind, "orderstream.dead_letter.stage": stage},
            )

    def finish(self) -> None:
        """The batch is over: its record spans go to the provider's span processors (none: nothing is sent)."""
        if self.rows:
            self.provider.emit_record_spans(self)

    def frame(self, resource: int) -> tuple:
        """The plain values that cross the pipe (export.SpanPipe): `resource` is the provider's resource's index."""
        return (self.name, self.scope, self.attributes, self.link, resource, self.rows)


def _own_flags(parent: int, parent_flags: int) -> int:
    """A sampled span's trace flags, as the SDK sets them: SAMPLED, and RANDOM_TRACE_ID (W3C Trace Context level 2)
    when it began the trace with a random id, or its parent's trace id was random (a Remote's flags keep only the
    sampled bit: 01, as RecordSpans.start writes it)."""
    return 0x03 if not parent else 0x01 | (parent_flags & 0x02)


def _headers(trace_hex: bytes, span_hex: bytes, flags_hex: bytes, state: str) -> list[tuple[str, bytes]]:
    """The ce_traceparent (and, with a trace state, ce_tracestate) headers of a context, from its hex fields."""
    headers = [(_TRACEPARENT, b"00-%b-%b-%b" % (trace_hex, span_hex, flags_hex))]
    if state:
        headers.append((propagation.TRACESTATE, state.encode()))
    return headers


def expand(frame: tuple) -> list[tuple]:
    """A RecordSpans' frame as the compacted spans export.readable_spans builds (export.compact's form)."""
    name, scope, shared, (link_trace, link_span, link_flags), resource, rows = frame
    link = (((link_trace, link_span, link_flags, False, ""), {}),)
    spans = []
    for trace_hex, span_id, parent_hex, flags, state, start, end, topic, partition, offset, key, error in rows:
        trace_id, parent = int(trace_hex, 16), int(parent_hex, 16) if parent_hex else 0
        attributes = {
            **shared,
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
            "messaging.kafka.message.key": key.decode("utf-8", errors="replace") if key is not None else "",
        }
        if error is None:
            status = (STATUS_UNSET, None)
        else:
            status = (STATUS_ERROR, error[0])
            attributes.update(error[1])
        spans.append(
            (
                f"{name} {topic}",
                (trace_id, span_id, _own_flags(parent, flags), False, state),
                (trace_id, parent, flags, True, state) if parent else None,
                KIND_CONSUMER,
                start,
                end,
                attributes,
                link,
                (),
                status,
                (scope, None, None),
                resource,
                (0, 0, 0),
            )
        )
    return spans
