"""Spans exported over OTLP/HTTP from the export child process (telemetry/export.py) reach the endpoint as the SDK
made them: a real HTTP endpoint decodes every request as an ExportTraceServiceRequest."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from orderstream.telemetry import tracing
from orderstream.telemetry.record_spans import RecordSpans


@pytest.fixture
def collector():
    received: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            request = ExportTraceServiceRequest()
            request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(request)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()


def test_spans_reach_the_otlp_endpoint_from_the_export_process(collector):
    endpoint, received = collector
    made = InMemorySpanExporter()
    provider = tracing.new_provider("export-test")
    provider.add_span_processor(SimpleSpanProcessor(made))
    provider.add_span_processor(tracing.otlp_processor(endpoint))
    tracer = provider.get_tracer("orderstream.test")
    light = provider.light_tracer("orderstream.test")  # the runtimes' batch and SQL spans: LightSpans
    for n in range(300):  # more than one export batch
        batch = light.start_span(f"process batch-{n}", kind=SpanKind.CONSUMER, attributes={"n": n})
        with tracer.start_as_current_span("process orders.commands", links=(Link(batch.get_span_context()),)):
            pass
        records = RecordSpans(provider, "orderstream.test", "apply", batch.get_span_context(), {"n": n})
        row, _ = records.start(None, "orders.events", n % 6, n, b"order-%d" % n)  # a record span, as plain values
        records.end(row)
        records.finish()  # the in-memory exporter gets an SDK span, the export process the row
        batch.end()

    provider.shutdown()  # closes the pipe: the child exports what it read, then exits

    exported = {
        span.span_id: (span, resource_spans.resource, scope_spans.scope)
        for request in received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    assert len(exported) == len(made.get_finished_spans()) == 900
    for original in made.get_finished_spans():
        span, resource, scope = exported[original.context.span_id.to_bytes(8, "big")]
        assert span.trace_id == original.context.trace_id.to_bytes(16, "big")
        assert span.name == original.name
        assert span.start_time_unix_nano == original.start_time and span.end_time_unix_nano == original.end_time
        assert span.parent_span_id == (original.parent.span_id.to_bytes(8, "big") if original.parent else b"")
        links = [link.context.span_id.to_bytes(8, "big") for link in original.links]
        assert [link.span_id for link in span.links] == links
        assert {a.key for a in span.attributes} == set(original.attributes)
        assert span.status.code == original.status.status_code.value
        assert scope.name == "orderstream.test"
        service = next(a.value.string_value for a in resource.attributes if a.key == "service.name")
        assert service == "orderstream-export-test"


def test_the_export_process_runs_before_the_first_export_and_a_dead_one_is_replaced(collector):
    """The child starts with the pipe (its imports done before the service's first export, not during its work); one
    that died is replaced at the next export, which still reaches the endpoint."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    from orderstream.telemetry.export import SpanPipe

    endpoint, received = collector
    pipe = SpanPipe(endpoint)
    first = pipe._child
    assert first is not None and first.poll() is None  # running, with nothing exported yet
    first.kill()
    first.wait()

    span = tracing.new_provider("export-test").get_tracer("orderstream.test").start_span("process orders.commands")
    span.end()
    assert pipe.export([span]) is SpanExportResult.SUCCESS
    assert pipe._child is not first
    pipe.shutdown()

    exported = [s.span_id for r in received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert exported == [span.context.span_id.to_bytes(8, "big")]
