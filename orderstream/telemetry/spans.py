"""Spans of Kafka messaging, after OpenTelemetry's messaging semantic conventions (and OTEP 0220 for batches).

- A batch consumer makes one span per batch (kind CONSUMER, operation `process`) with a LINK to the trace context of
  each record it holds (up to tracing.MAX_LINKS), not a parent: a batch mixes many traces.
- Each record it decides or applies gets a span of its own whose PARENT is the record's context (so the span joins
  the trace of the request that caused the record) and which links back to its batch's span: kept as plain values
  until export (record_spans.py), since an SDK span per record costs as much as deciding the record.
- A producer span (kind PRODUCER, operation `send`) is the context a sent record carries in its headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orderstream.telemetry import propagation
from orderstream.telemetry.tracing import MAX_LINKS

SYSTEM = {"messaging.system": "kafka"}


# A projector links (and gives an `apply` span to) the contexts of at most MAX_LINKS records per batch, looking at no
# more than this many records for them: a catch-up batch of thousands costs no more to trace than a live one.
SCAN_LIMIT = 4 * MAX_LINKS
# ... and a FULL batch (the projector is behind: catching up, rebuilding) traces only this many of its records. An
# `apply` span costs tens of microseconds of the writer thread (measured: 128 of them per 5,000-event batch were ~4%
# of a catch-up); a live batch, smaller than the batch size, still traces up to MAX_LINKS records.
CATCH_UP_TRACED = 16


def contexts_of(records: Iterable[Any]) -> list[Any]:
    """The trace context each record carries in its headers, as propagation.extract_remote() values (None where it has
    none), read once per batch."""
    return [propagation.extract_remote(record.headers()) for record in records]


def first_contexts(records: list[Any], limit: int = MAX_LINKS) -> list[tuple[Any, Any]]:
    """(record, context) of the first `limit` records that carry one, among the first SCAN_LIMIT records."""
    found = []
    for record in records[:SCAN_LIMIT]:
        context = propagation.extract_remote(record.headers())
        if context is not None:
            found.append((record, context))
            if len(found) == limit:
                break
    return found


def start_batch_span(
    tracer: Any, name: str, records: list[Any], contexts: list[Any], attributes: dict[str, Any]
) -> Any:
    """The span of one batch: a root of its own trace (not made current), linking to its records' contexts (at most
    MAX_LINKS, the first ones)."""
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Link, SpanKind

    links = []
    for context in contexts:
        if context is not None:
            links.append(Link(propagation.context_of(context)))
            if len(links) == MAX_LINKS:
                break
    topics = sorted({record.topic() for record in records})
    return tracer.start_span(
        f"process {name}",
        context=otel_context.Context(),  # a new trace: the records' own traces are linked, not adopted
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            **SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.batch.message_count": len(records),
            "messaging.destination.name": topics[0] if len(topics) == 1 else ",".join(topics),
            **attributes,
        },
    )


def end_with_error(span: Any, error: BaseException | Any | None) -> None:
    """End a span, marking it failed when there is an error (an exception or a Kafka error)."""
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, str(error)))
        if isinstance(error, BaseException):
            kind = type(error).__name__
        else:  # a confluent_kafka KafkaError
            kind = error.name() if callable(getattr(error, "name", None)) else str(error)
        span.set_attribute("error.type", kind)
    span.end()
