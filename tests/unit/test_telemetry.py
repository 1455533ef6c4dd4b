"""Pure parts of orderstream.telemetry: trace context headers, batched histogram observations, rebuild progress."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from orderstream.telemetry import metrics, propagation
from orderstream.telemetry.rebuild import RebuildProgress


class _Record:
    def __init__(self, headers):
        self._headers = headers

    def headers(self):
        return self._headers


def test_trace_context_round_trips_through_ce_headers():
    from opentelemetry.trace import SpanContext, TraceFlags, TraceState

    context = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "value")]),
    )
    headers = propagation.headers_of(context)
    assert headers[0] == ("ce_traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert headers[1] == ("ce_tracestate", b"vendor=value")
    back = propagation.extract([("ce_id", b"x"), *headers])
    assert (back.trace_id, back.span_id, int(back.trace_flags), back.is_remote) == (
        context.trace_id,
        context.span_id,
        1,
        True,
    )
    assert back.trace_state.get("vendor") == "value"


def test_a_plain_traceparent_header_is_read_too_and_ce_wins():
    plain = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
    assert propagation.extract([plain]).span_id == 0xB7AD6B7169203331
    ce = ("ce_traceparent", b"00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01")
    assert propagation.extract([plain, ce]).span_id == 0x00F067AA0BA902B7


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"garbage",
        b"00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # uppercase
        b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # version 00 has 4 fields
        b"\xff\xfe",
    ],
)
def test_a_malformed_traceparent_is_no_context_never_an_error(value):
    assert propagation.extract([("ce_traceparent", value)]) is None


_HEX = "0123456789abcdefABCDEF"


def _hex(size: int):
    """Hex of the field's size (upper case at times, all zeros at times) or of any size up to a few more."""
    return st.one_of(
        st.text(_HEX[:16], min_size=size, max_size=size),
        st.text(_HEX, min_size=size, max_size=size),
        st.just("0" * size),
        st.text(_HEX, max_size=size + 2),
    )


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda v, t, s, f, tail: f"{v}-{t}-{s}-{f}{tail}".encode(),
            st.sampled_from(["00", "01", "ff", "0"]),
            _hex(32),
            _hex(16),
            _hex(2),
            st.sampled_from(["", "-x", " ", "\n"]),
        ),
    )
)
def test_reading_a_header_as_bytes_agrees_with_the_text_parser(value):
    """The bytes fast path of extract_remote reads exactly what parse_traceparent reads of the header as text: the
    same ids (as hex that parses to them) and flags, or none."""
    fast, text = propagation._parse_header(value), propagation.parse_traceparent(propagation._text(value))
    if text is None:
        assert fast is None
    else:
        trace_hex, span_hex, flags = fast
        assert (int(trace_hex, 16), int(span_hex, 16), flags) == text
        assert (len(trace_hex), len(span_hex)) == (32, 16)  # lowercase, zero-padded: written on as they are
        assert trace_hex == trace_hex.lower() and span_hex == span_hex.lower()


def test_no_headers_is_no_context():
    assert propagation.extract(None) is None
    assert propagation.extract([]) is None
    assert propagation.headers_of(None) == []


def test_observe_many_equals_one_observe_per_value():
    values = [0.0, 0.001, 0.004, 0.05, 0.05, 0.3, 2.0, 45.0, 1000.0, -1.0]
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Histogram("h", "h", ["view"], buckets=metrics.AGE_BUCKETS, registry=one)
    batched = Histogram("h", "h", ["view"], buckets=metrics.AGE_BUCKETS, registry=many)
    for value in values:
        single.labels("v").observe(value)
    metrics.observe_many(batched.labels("v"), values)

    def samples(registry):
        return [(s.name, s.labels, s.value) for f in registry.collect() for s in f.samples if "_created" not in s.name]

    assert samples(one) == samples(many)
    assert len(samples(one)) == len(metrics.AGE_BUCKETS) + 1 + 2  # the buckets, +Inf, _count and _sum


def test_rebuild_progress_reports_the_phase_ratio_and_passes_everything_on():
    seen = []

    class Sink:
        def phase(self, name, total):
            seen.append(("phase", name, total))

        def advance(self, offsets, events):
            seen.append(("advance", offsets, events))

    progress = RebuildProgress("unit-view", Sink())
    progress.phase("build", 200)
    progress.advance(50, 40)
    ratio = metrics.view_rebuild_progress.labels("unit-view", "build")
    assert ratio._value.get() == 0.25
    progress.advance(150, 100)
    assert ratio._value.get() == 1.0
    assert metrics.view_rebuild_applied.labels("unit-view")._value.get() == 140
    progress.phase("catch-up", 0)
    assert metrics.view_rebuild_progress.labels("unit-view", "catch-up")._value.get() == 1.0
    assert seen == [("phase", "build", 200), ("advance", 50, 40), ("advance", 150, 100), ("phase", "catch-up", 0)]


class _Record:
    def __init__(self, headers):
        self._headers = headers

    def headers(self):
        return self._headers


def test_a_projector_batch_traces_the_first_records_that_carry_a_context_up_to_its_limit():
    from orderstream.telemetry import spans

    traced = ("ce_traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    records = [_Record([traced] if n % 2 else None) for n in range(2 * spans.SCAN_LIMIT)]

    live = spans.first_contexts(records)
    catching_up = spans.first_contexts(records, spans.CATCH_UP_TRACED)

    assert [r for r, _ in live] == records[1 : 2 * spans.MAX_LINKS : 2]
    assert [r for r, _ in catching_up] == records[1 : 2 * spans.CATCH_UP_TRACED : 2]
    assert all(c == (b"0af7651916cd43dd8448eb211c80319c", b"b7ad6b7169203331", 1, "") for _, c in catching_up)


class _Kafka(_Record):
    def __init__(self, headers, offset):
        super().__init__(headers)
        self._offset = offset

    def topic(self):
        return "p.orders.commands"

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def key(self):
        return b"order-1"


def test_a_record_sampled_out_upstream_gets_no_span_and_forwards_its_context_unchanged():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from orderstream.telemetry import tracing
    from orderstream.telemetry.processor import BatchTrace

    memory = InMemorySpanExporter()
    provider = tracing.new_provider("unit")
    provider.add_span_processor(SimpleSpanProcessor(memory))
    sampled = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    dropped = b"00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"
    records = [_Kafka([("ce_traceparent", sampled)], 1), _Kafka([("ce_traceparent", dropped)], 2)]
    logical = {"p.orders.commands": "orders.commands"}
    batch = BatchTrace(provider, provider.get_tracer("t"), "order", "order", "g", records, logical)
    seen = []
    traced = batch.wrap(lambda _batch, record: seen.append((record.offset(), list(batch.headers))))
    for record in records:
        traced(None, record)
    batch.end()

    record_spans = [s for s in memory.get_finished_spans() if s.name == "process orders.commands"]
    assert [s.parent.span_id for s in record_spans] == [0xB7AD6B7169203331]  # only the sampled record's span
    assert seen[0][1][0][1].startswith(b"00-0af7651916cd43dd8448eb211c80319c-")
    assert seen[0][1][0][1] != sampled  # its own span's id, as the parent of what it produces
    assert seen[1][1] == [("ce_traceparent", dropped)]  # forwarded as it came: still not sampled downstream
    assert batch.headers == []


def test_record_spans_are_the_spans_the_sdk_would_make_of_each_record():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from orderstream.telemetry import tracing
    from orderstream.telemetry.processor import BatchTrace

    memory = InMemorySpanExporter()
    provider = tracing.new_provider("unit")
    provider.add_span_processor(SimpleSpanProcessor(memory))
    remote = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    records = [
        _Kafka([("ce_traceparent", remote), ("ce_tracestate", b"vendor=x1")], 7),
        _Kafka(None, 8),  # no context: a new trace, sampled by the provider's sampler (ratio 1.0)
        _Kafka([("ce_traceparent", remote)], 9),  # dead-lettered while decided
    ]
    batch = BatchTrace(provider, provider.get_tracer("t"), "order", "order", "g", records, {})
    handed_on = []

    def handle(_batch, record):
        handed_on.append(list(batch.headers))
        if record.offset() == 9:
            from orderstream.telemetry.record_spans import RecordSpans

            RecordSpans.fail(batch.current, ValueError("bad"), "validate")

    traced = batch.wrap(handle)
    for record in records:
        traced(None, record)
    batch.end()

    made = {s.attributes["messaging.kafka.offset"]: s for s in memory.get_finished_spans() if s.name != "process order"}
    batch_span = next(s for s in memory.get_finished_spans() if s.name == "process order")
    assert sorted(made) == [7, 8, 9]
    first, new, failed = made[7], made[8], made[9]
    assert first.name == "process p.orders.commands" and first.kind is SpanKind.CONSUMER
    assert (first.parent.trace_id, first.parent.span_id, first.parent.is_remote) == (
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        True,
    )
    assert first.context.trace_id == first.parent.trace_id and first.context.trace_state.get("vendor") == "x1"
    assert [link.context.span_id for link in first.links] == [batch_span.context.span_id]
    assert first.attributes["messaging.kafka.message.key"] == "order-1"
    assert first.attributes["orderstream.service"] == "order"
    assert first.start_time <= first.end_time and first.status.status_code is StatusCode.UNSET
    assert new.parent is None and new.context.trace_id != first.context.trace_id
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["orderstream.dead_letter.stage"] == "validate"
    # what each record hands on is its own span's context (and the trace state it came with)
    assert handed_on[0] == [
        ("ce_traceparent", f"00-{first.context.trace_id:032x}-{first.context.span_id:016x}-01".encode()),
        ("ce_tracestate", b"vendor=x1"),
    ]
    assert handed_on[1][0][1].decode().split("-")[1:3] == [
        f"{new.context.trace_id:032x}",
        f"{new.context.span_id:016x}",
    ]


def test_a_new_trace_sampled_out_gets_no_span_but_an_unsampled_context():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from orderstream.telemetry import tracing
    from orderstream.telemetry.processor import BatchTrace

    memory = InMemorySpanExporter()
    provider = tracing.new_provider("unit", sampling_ratio=0.0)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    record = _Kafka(None, 1)
    batch = BatchTrace(provider, provider.get_tracer("t"), "order", "order", "g", [record], {})
    seen = []
    batch.wrap(lambda _batch, _record: seen.append(list(batch.headers)))(None, record)
    batch.end()

    assert memory.get_finished_spans() == ()  # neither the batch's span nor the record's: both sampled out
    assert seen[0][0][0] == "ce_traceparent" and seen[0][0][1].endswith(b"-00")


def test_a_process_tree_scrape_leaves_out_a_file_a_starting_child_has_not_sized_yet(tmp_path):
    """A child creates its values file empty, then sizes it; prometheus-client's collector failed a scrape that came
    in between (struct.error: a 500 from `run all`'s /metrics). The tree's registry skips the empty file."""
    from prometheus_client import generate_latest
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from orderstream.telemetry.exposition import tree_registry

    written = MmapedDict(str(tmp_path / "counter_101.db"))  # a child that is up: its counter is at 3
    written.write_value(mmap_key("jobs_total", "jobs_total", (), (), "jobs"), 3.0, 0.0)
    written.close()
    (tmp_path / "counter_102.db").touch()  # a child starting: its file exists, still empty

    scraped = generate_latest(tree_registry(str(tmp_path))).decode()

    assert "jobs_total 3.0" in scraped.splitlines()
