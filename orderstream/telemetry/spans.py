"""Spans of Kafka messaging, after OpenTelemetry's messaging semantic conventions (and OTEP 0220 for batches).

- A batch consumer makes one span per batch (kind CONSUMER, operation `process`) with a LINK to the trace context of
  each record it holds (up to tracing.MAX_LINKS), not a parent: a batch mixes many traces.
- Each record it decides or applies gets a span of its own whose PARENT is the record's context (so the span joins
  the trace of the request that caused the record) and which links back to its batch's span.
- A producer span (kind PRODUCER, operation `send`) is the context a sent record carries in its headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orderstream.telemetry import propagation
from orderstream.telemetry.tracing import MAX_LINKS

SYSTEM = {"messaging.system": "kafka"}


def record_links(records: Iterable[Any]) -> list[Any]:
    """Links to the contexts the records carry (their ce_traceparent headers), at most MAX_LINKS."""
    from opentelemetry.trace import Link

    links = []
    for record in records:
        context = propagation.extract(record.headers())
        if context is not None:
            links.append(Link(context))
            if len(links) == MAX_LINKS:
                break
    return links


def start_batch_span(tracer: Any, name: str, records: list[Any], attributes: dict[str, Any]) -> Any:
    """The span of one batch: links to its records' contexts; a root of its own trace (not made current)."""
    from opentelemetry import context as otel_context
    from opentelemetry.trace import SpanKind

    topics = sorted({record.topic() for record in records})
    return tracer.start_span(
        f"process {name}",
        context=otel_context.Context(),  # a new trace: the records' own traces are linked, not adopted
        kind=SpanKind.CONSUMER,
        links=record_links(records),
        attributes={
            **SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.batch.message_count": len(records),
            "messaging.destination.name": topics[0] if len(topics) == 1 else ",".join(topics),
            **attributes,
        },
    )


def start_record_span(
    tracer: Any,
    record: Any,
    logical_topic: str,
    batch_span: Any,
    attributes: dict[str, Any],
    name: str = "process",
    remote: Any = None,
    start_time: int | None = None,
) -> Any:
    """The span of one record: child of the context in its headers (a new trace, sampled by ratio, when it has
    none), linked to the batch's span. `remote`: the record's context when the caller has extracted it already."""
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind

    if remote is None:
        remote = propagation.extract(record.headers())
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote)) if remote is not None else None
    key = record.key()
    return tracer.start_span(
        f"{name} {logical_topic}",
        context=parent if parent is not None else _empty_context(),
        kind=SpanKind.CONSUMER,
        links=[Link(batch_span.get_span_context())] if batch_span is not None else (),
        attributes={
            **SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": name,
            "messaging.destination.name": logical_topic,
            "messaging.destination.partition.id": str(record.partition()),
            "messaging.kafka.offset": record.offset(),
            **({"messaging.kafka.message.key": key.decode("utf-8", errors="replace")} if key is not None else {}),
            **attributes,
        },
        start_time=start_time,
    )


def _empty_context() -> Any:
    from opentelemetry import context as otel_context

    return otel_context.Context()


def current_headers() -> list[tuple[str, bytes]]:
    """ce_traceparent/ce_tracestate of the current span (the record being decided), or [] outside any span."""
    from opentelemetry import trace

    return propagation.headers_of(trace.get_current_span().get_span_context())


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
