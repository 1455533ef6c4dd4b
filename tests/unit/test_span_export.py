"""export.compact/rebuild: what crosses the pipe to the export process comes out as the same ReadableSpan."""

from __future__ import annotations

import marshal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
    frame = marshal.loads(export.encode(spans))

    rebuilt = export.rebuild(frame)

    assert len(frame[0]) == 1  # the provider's one resource travels once per frame
    assert [_view(s) for s in rebuilt] == [_view(s) for s in spans]
    assert rebuilt[0].parent.trace_state.get("vendor") == "x1"


def test_record_spans_cross_the_pipe_as_the_spans_made_in_process():
    from orderstream.telemetry.record_spans import RecordSpans

    provider = tracing.new_provider("unit")
    batch = provider.get_tracer("orderstream.unit").start_span("process order")
    remote = (b"%032x" % 0x1F, b"%016x" % 0x2E, 1, "v=1")  # propagation.extract_remote()'s form
    records = RecordSpans(provider, "orderstream.unit", "apply", batch.get_span_context(), {"orderstream.view": "o"})
    ok, _ = records.start(remote, "orders.events", 3, 41, b"order-1")
    records.end(ok)
    failed, _ = records.start(None, "orders.events", 4, 42, None)
    records.end(failed, RuntimeError("boom"))
    batch.end()

    rebuilt = export.rebuild(marshal.loads(export.encode([records, batch])))  # what the export process builds
    in_process = [
        batch,
        *export.readable_record_spans(records, provider.resource),
    ]  # what an in-process span processor gets

    assert [_view(s) for s in rebuilt] == [_view(s) for s in in_process]
    _, ok_span, failed_span = rebuilt
    assert [s.attributes["messaging.kafka.offset"] for s in (ok_span, failed_span)] == [41, 42]
    assert ok_span.name == "apply orders.events" and ok_span.parent.trace_state.get("v") == "1"
    assert failed_span.parent is None and failed_span.attributes["error.type"] == "RuntimeError"
    assert failed_span.status.status_code is StatusCode.ERROR


def test_a_record_span_hands_on_its_context_unless_told_not_to():
    from orderstream.telemetry.record_spans import RecordSpans

    provider = tracing.new_provider("unit")
    batch = provider.get_tracer("orderstream.unit").start_span("process order")
    records = RecordSpans(provider, "orderstream.unit", "apply", batch.get_span_context(), {})
    remote = (b"%032x" % 0x1F, b"%016x" % 0x2E, 1, "v=1")  # propagation.extract_remote()'s form

    carried, headers = records.start(remote, "orders.events", 3, 41, b"order-1")
    kept, none = records.start(remote, "orders.events", 3, 42, b"order-1", carry=False)  # a view's record span
    _, unsampled = records.start((*remote[:2], 0, ""), "orders.events", 3, 43, b"order-1", carry=False)

    assert headers == [
        ("ce_traceparent", f"00-{0x1F:032x}-{carried[1]:016x}-01".encode()),
        ("ce_tracestate", b"v=1"),
    ]
    assert none == [] and unsampled == []
    assert kept[:5] == [remote[0], kept[1], remote[1], 1, "v=1"] and len(records.rows) == 2


def _spans_of(request) -> list:
    """(resource attributes, scope name, span) of every span in an OTLP request, in span id order."""
    found = [
        (list(resource_spans.resource.attributes), scope_spans.scope, span)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    return sorted(found, key=lambda item: item[2].span_id)


def test_the_export_process_encodes_record_spans_as_the_sdk_encoder_does():
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from orderstream.telemetry.record_spans import RecordSpans

    provider = tracing.new_provider("unit")
    batch = provider.get_tracer("orderstream.unit").start_span("process order")
    remote = (b"%032x" % 0x1F, b"%016x" % 0x2E, 1, "v=1")  # propagation.extract_remote()'s form
    records = RecordSpans(provider, "orderstream.unit", "process", batch.get_span_context(), {"orderstream.stage": "o"})
    for offset, context in enumerate([remote, None, remote]):
        row, _ = records.start(context, "orders.commands", offset % 2, offset, f"order-{offset}".encode())
        if offset == 2:
            RecordSpans.fail(row, ValueError("bad"), "decode")
        records.end(row)
    batch.end()
    frame = marshal.loads(export.encode([records, batch]))

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    direct = ExportTraceServiceRequest.FromString(export.request_of(frame))
    through_sdk = encode_spans(export.rebuild(marshal.loads(export.encode([records, batch]))))

    assert len(_spans_of(direct)) == 4
    assert _spans_of(direct) == _spans_of(through_sdk)


def _many_kinds_of_spans() -> list:
    """Finished SDK spans with what the SDK's encoder has to handle: every attribute type, events, links with and
    without attributes, statuses with and without a description, every kind, and dropped attributes and links."""
    from opentelemetry import trace

    memory = InMemorySpanExporter()
    provider = tracing.new_provider("unit")
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("orderstream.unit", "3.1", schema_url="https://opentelemetry.io/schemas/1.26.0")
    plain = provider.get_tracer("orderstream.plain")
    values = {
        "s": "é€ text",
        "empty": "",
        "t": True,
        "f": False,
        "i": -(2**63),
        "u": 2**63 - 1,
        "x": -2.5,
        "strings": ("a", "", "ü"),
        "ints": (1, -2, 3),
        "bools": (True, False),
        "floats": (0.25,),
        "none": (),
    }
    remote = SpanContext(0x1, 0x2, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")]))
    first = tracer.start_span("first", kind=SpanKind.SERVER, attributes=values, links=[Link(remote, {"r": 1})])
    first.add_event("no attributes")
    first.add_event("with", {"n": 3, "why": "because"})
    first.set_status(Status(StatusCode.OK))
    first.end()
    many = {f"a{i}": i for i in range(130)}  # beyond the SDK's 128: two dropped
    links = [Link(first.get_span_context(), {"i": i} if i % 2 else None) for i in range(130)]  # 128 kept
    second = plain.start_span(
        "second",
        context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
        kind=SpanKind.PRODUCER,
        links=links,
        attributes=many,
    )
    second.set_status(Status(StatusCode.ERROR))
    second.end()
    for kind in (SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.CONSUMER):
        plain.start_span(kind.name, kind=kind, context=trace.set_span_in_context(first)).end()
    provider.shutdown()
    return [*_finished_spans(), *memory.get_finished_spans()]


def test_sdk_spans_as_wire_bytes_parse_as_the_sdk_encoder_writes_them():
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans = _many_kinds_of_spans()
    body = export.encode(spans)

    direct = ExportTraceServiceRequest.FromString(export.request_of(marshal.loads(body)))
    through_sdk = encode_spans(export.rebuild(marshal.loads(body)))

    assert (spans[-4].dropped_attributes, spans[-4].dropped_links) == (2, 2)
    assert len(_spans_of(direct)) == len(spans) == 7
    assert _spans_of(direct) == _spans_of(through_sdk)
    scopes = sorted(
        {(s.scope.name, s.scope.version, s.schema_url) for r in direct.resource_spans for s in r.scope_spans}
    )
    assert ("orderstream.unit", "3.1", "https://opentelemetry.io/schemas/1.26.0") in scopes


def test_the_export_process_sends_through_the_otlp_exporters_own_client():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        # the installed exporter has the client the export process uses (else it falls back to the slower export())
        assert export._sender(exporter) is not None
    finally:
        exporter.shutdown()


_records = st.lists(
    st.tuples(
        st.one_of(
            st.none(),
            st.tuples(  # propagation.extract_remote()'s form
                st.integers(1, 2**128 - 1).map(lambda trace_id: b"%032x" % trace_id),
                st.integers(1, 2**64 - 1).map(lambda span_id: b"%016x" % span_id),
                st.just(1),
                st.sampled_from(["", "v=1", "a=b,c=d"]),
            ),
        ),
        st.sampled_from(["orders.commands", "orders.commands.dlq", "pagamentos.événements"]),
        st.integers(0, 63),
        st.integers(0, 2**63 - 1),
        st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=20).map(str.encode)),
        st.one_of(st.none(), st.text(max_size=30)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_records)
def test_record_spans_as_wire_bytes_parse_as_the_sdk_encoder_writes_them(records_of_a_batch):
    """otlp_wire writes protobuf by hand: whatever the rows hold (no context, trace state, any key bytes, any offset,
    failures), the official classes parse its bytes into the spans the SDK's encoder makes of the same frame."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from orderstream.telemetry.record_spans import RecordSpans

    provider = tracing.new_provider("unit")
    batch = provider.get_tracer("orderstream.unit").start_span("process order")
    records = RecordSpans(provider, "orderstream.unit", "process", batch.get_span_context(), {"orderstream.stage": "o"})
    for context, topic, partition, offset, key, failure in records_of_a_batch:
        row, _ = records.start(context, topic, partition, offset, key)
        if failure is not None:
            RecordSpans.fail(row, ValueError(failure), "decode")
        records.end(row)
    batch.end()
    body = export.encode([records, batch])

    direct = ExportTraceServiceRequest.FromString(export.request_of(marshal.loads(body)))
    through_sdk = encode_spans(export.rebuild(marshal.loads(body)))

    assert len(_spans_of(direct)) == len(records_of_a_batch) + 1
    assert _spans_of(direct) == _spans_of(through_sdk)


@pytest.mark.parametrize(
    "value", [0, 1, 127, 128, 2**63 - 1, -1, -(2**63), True, False, 0.5, -2.25, "", "é€", "x" * 300]
)
def test_any_value_bytes_parse_as_protobuf_writes_them(value):
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    from orderstream.telemetry.otlp_wire import key_value

    assert KeyValue.FromString(key_value("k", value)) == _export_key_value("k", value)


def _export_key_value(key, value):
    """The KeyValue protobuf's own classes make of (key, value)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))
