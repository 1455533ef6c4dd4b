"""LightSpans (the runtimes' batch spans, the SQL spans) are the spans the SDK's tracer makes, in and out of process."""

from __future__ import annotations

import marshal

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from orderstream.telemetry import export, tracing
from orderstream.telemetry.light_spans import LightSpan

REMOTE = SpanContext(0x1F, 0x2E, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("v", "1")]))


class RowRefused(Exception):
    """Not a builtin: its `exception.type` names its module too."""


class _Queue(SpanProcessor):
    """A span processor that takes LightSpans as they are, as the export processor does."""

    takes_record_spans = True

    def __init__(self) -> None:
        self.ended: list = []

    def on_end(self, span) -> None:
        self.ended.append(span)


def _provider(ratio: float = 1.0):
    memory, queue = InMemorySpanExporter(), _Queue()
    provider = tracing.new_provider("unit", sampling_ratio=ratio)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(queue)
    return provider, memory, queue


def _story(tracer) -> None:
    """A batch span with links, a SQL-like child with attributes and an event, and a child that fails."""
    batch = tracer.start_span(
        "process order",
        kind=SpanKind.CONSUMER,
        links=[Link(REMOTE, {"weight": 1}), Link(REMOTE)],
        attributes={"messaging.batch.message_count": 2, "tags": ["a", "b"]},
    )
    with trace.use_span(batch, end_on_exit=False):
        query = tracer.start_span("SELECT view.db", kind=trace.SpanKind.CLIENT)
        with trace.use_span(query, end_on_exit=False):
            query.set_attribute("db.statement", "SELECT 1")
            query.set_attribute("db.system", "sqlite")
            query.set_attributes({"ratio": 0.5, "ok": True})
            query.add_event("retried", {"attempt": 2})
        query.end()
        with pytest.raises(RowRefused), tracer.start_as_current_span("apply"):
            raise RowRefused("bad row")
    batch.set_status(Status(StatusCode.ERROR, "one record failed"))
    batch.set_attribute("error.type", "RowRefused")
    batch.end()


def _shape(spans) -> list:
    """What a span says, but for its random ids and its clock times (the same story told twice differs in those)."""
    by_id = {s.context.span_id: s.name for s in spans}
    return [
        (
            s.name,
            s.kind,
            int(s.context.trace_flags),
            None if s.parent is None else by_id.get(s.parent.span_id, "remote"),
            dict(s.attributes),
            [(link.context, dict(link.attributes)) for link in s.links],
            [(e.name, {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}) for e in s.events],
            (s.status.status_code, s.status.description),
            s.instrumentation_scope.name,
            dict(s.resource.attributes),
            s.end_time >= s.start_time,
        )
        for s in spans
    ]


def test_light_spans_are_the_spans_the_sdk_tracer_makes():
    sdk_provider, sdk_memory, _ = _provider()
    light_provider, light_memory, queue = _provider()

    _story(sdk_provider.get_tracer("orderstream.unit"))
    _story(light_provider.light_tracer("orderstream.unit"))

    assert all(isinstance(span, LightSpan) for span in queue.ended) and len(queue.ended) == 3
    assert _shape(light_memory.get_finished_spans()) == _shape(sdk_memory.get_finished_spans())
    query = next(s for s in light_memory.get_finished_spans() if s.name == "SELECT view.db")
    batch = next(s for s in light_memory.get_finished_spans() if s.name == "process order")
    assert query.context.trace_id == batch.context.trace_id and query.parent.span_id == batch.context.span_id
    assert int(batch.context.trace_flags) == 0x03  # SAMPLED and RANDOM_TRACE_ID: a trace begun here


def test_light_spans_cross_the_pipe_as_the_spans_made_in_process():
    provider, memory, queue = _provider()
    _story(provider.light_tracer("orderstream.unit"))

    body = export.encode(queue.ended)  # what SpanPipe writes to the export process
    rebuilt = export.rebuild(marshal.loads(body))

    assert [s.to_json() for s in rebuilt] == [s.to_json() for s in memory.get_finished_spans()]
    direct = ExportTraceServiceRequest.FromString(export.request_of(marshal.loads(body)))
    assert direct == encode_spans(rebuilt)  # the export process's bytes are the SDK encoder's


def test_a_light_span_follows_the_sampling_of_its_parent():
    provider, memory, queue = _provider(ratio=0.0)
    tracer = provider.light_tracer("orderstream.unit")

    root = tracer.start_span("process order")  # a new trace, sampled out at ratio 0
    with trace.use_span(root, end_on_exit=True):
        unsampled_child = tracer.start_span("SELECT view.db")
        unsampled_child.end()
    with trace.use_span(trace.NonRecordingSpan(REMOTE), end_on_exit=False):
        followed = tracer.start_span("SELECT view.db")  # its parent was sampled where its trace began
        followed.end()

    assert not root.is_recording() and not root.get_span_context().trace_flags.sampled
    assert not unsampled_child.is_recording()
    assert unsampled_child.get_span_context().trace_id == root.get_span_context().trace_id
    assert [s.name for s in memory.get_finished_spans()] == ["SELECT view.db"] and len(queue.ended) == 1
    span = memory.get_finished_spans()[0]
    assert span.parent == REMOTE and span.context.trace_state.get("v") == "1"


def test_the_sqlalchemy_instrumentation_makes_light_sql_spans_inside_a_batch():
    from sqlalchemy import create_engine, text

    provider, memory, queue = _provider()
    tracing.install(provider)
    try:
        engine = tracing.trace_engine(create_engine("sqlite://"))
        batch = provider.light_tracer("orderstream.unit").start_span("process order-view")
        with trace.use_span(batch, end_on_exit=True), engine.begin() as conn:
            assert conn.execute(text("SELECT 41 + 1")).scalar() == 42
    finally:
        tracing.uninstall()

    sql = [s for s in memory.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [s.attributes.get("db.statement") or s.attributes.get("db.query.text") for s in sql] == ["SELECT 41 + 1"]
    assert sql[0].parent.span_id == batch.get_span_context().span_id
    assert sql[0].attributes["db.system"] == "sqlite"
    assert all(isinstance(span, LightSpan) for span in queue.ended)
