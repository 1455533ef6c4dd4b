"""export.compact/rebuild: what crosses the pipe to the export process comes out as the same ReadableSpan."""

from __future__ import annotations

import marshal

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from orderstream.telemetry import export, tracing


def _finished_spans() -> list:
    memory = InMemorySpanExporter()
    provider = tracing.new_provider("unit")
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("orderstream.unit", "1.2")
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x1")]),
    )
    from opentelemetry import trace

    batch = tracer.start_span("process order", kind=SpanKind.CONSUMER, attributes={"count": 3, "tags": ["a", "b"]})
    record = tracer.start_span(
        "process orders.commands",
        context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
        kind=SpanKind.CONSUMER,
        links=(Link(batch.get_span_context(), {"weight": 0.5}),),
        attributes={"messaging.kafka.offset": 12, "ok": True, "big": 2**62},
    )
    record.add_event("retried", {"attempt": 2})
    record.set_status(Status(StatusCode.ERROR, "dead-lettered"))
    record.end()
    batch.end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def _view(span) -> tuple:
    return (
        span.name,
        span.context,
        span.parent,
        span.kind,
        span.start_time,
        span.end_time,
        dict(span.attributes),
        [(link.context, dict(link.attributes)) for link in span.links],
        [(event.name, event.timestamp, dict(event.attributes)) for event in span.events],
        (span.status.status_code, span.status.description),
        span.instrumentation_scope,
        dict(span.resource.attributes),
        (span.dropped_attributes, span.dropped_events, span.dropped_links),
    )


def test_a_span_crosses_the_pipe_unchanged():
    spans = _finished_spans()
    resources: dict[int, int] = {}
    resource_list: list = []
    frame = marshal.loads(marshal.dumps((resource_list, [export.compact(s, resources, resource_list) for s in spans])))

    rebuilt = export.rebuild(frame)

    assert len(resource_list) == 1  # the provider's one resource travels once per frame
    assert [_view(s) for s in rebuilt] == [_view(s) for s in spans]
    assert rebuilt[0].parent.trace_state.get("vendor") == "x1"
