"""Span export in a child process: the service's process hands finished spans over a pipe, the child encodes them.

The OTLP exporter (protobuf encoding, an HTTP POST through `requests`) is Python work that holds the GIL: in the
service's process it took a third of the CPU the service thread itself used while deciding a burst of commands
(docs/OBSERVABILITY.md, "Cost"), and every export stalled the consumer loop. So the process keeps the SDK's
BatchSpanProcessor (its queue, its drop-when-full, its timed flush) with SpanPipe as the exporter: export() turns
each span into plain tuples (a batch's record spans, record_spans.RecordSpans, are plain values already: one queue
item per batch), marshals them and writes them to the stdin of a child (`python -m orderstream.telemetry.export
ENDPOINT`), which writes them as OTLP protobuf bytes (otlp_wire) and POSTs them through the SDK's OTLPSpanExporter's
own HTTP client (rebuilding SDK ReadableSpans and exporting them only where that client is missing). The write blocks
while the child is behind (the pipe is full): the BatchSpanProcessor's queue then fills and drops spans, as it does
when a collector is slow, and the service itself never waits.

The child starts with the SpanPipe, as tracing is set up when the service starts: its imports (0.2-0.25 s of CPU)
are done before the first export rather than in the middle of the service's work. It ends when the pipe closes
(shutdown, or the parent dying): it exports what it has read, then exits; one that died is replaced at the next
export. Frames are a 4-byte length and a marshal of (resources, spans, record span groups);
marshal is the stdlib's fastest serialization of plain values, and the pipe only ever connects a process to its own
child.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO

from orderstream.telemetry import otlp_wire
from orderstream.telemetry.light_spans import LightSpan
from orderstream.telemetry.record_spans import RecordSpans, expand

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
SHUTDOWN_WAIT_S = 15.0  # the child's last export: the OTLP exporter's own timeout (10 s) and some
EXPORT_NICENESS = 10  # the export process's scheduling priority, relative to the service's (os.nice)


# --- the service's side ------------------------------------------------------------------------------------------


def _context(context: Any) -> tuple | None:
    if context is None:
        return None
    # a SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)
    state = context[4]
    return (context[0], context[1], int(context[3]), context[2], state.to_header() if state else "")


def _attributes(attributes: Any) -> dict:
    """A plain dict of a span's attributes. The SDK's BoundedAttributes keeps them in a dict of its own (`_dict`):
    copying that is a C loop, where the Mapping protocol calls back into Python per key."""
    if not attributes:
        return {}
    return dict(getattr(attributes, "_dict", attributes))


def _resource_index(resource: Any, resources: dict[int, int], resource_list: list) -> int:
    """The index of `resource` in the frame's resource_list (added on first use: a resource travels once a frame)."""
    index = resources.get(id(resource))
    if index is None:
        index = resources[id(resource)] = len(resource_list)
        resource_list.append((_attributes(resource.attributes), resource.schema_url))
    return index


def compact(span: Any, resources: dict[int, int], resource_list: list) -> tuple:
    """A finished ReadableSpan as plain values (marshal-able); its resource as an index into resource_list."""
    index = _resource_index(span.resource, resources, resource_list)
    scope = span.instrumentation_scope
    status = span.status
    return (
        span.name,
        _context(span.context),
        _context(span.parent),
        span.kind.value,
        span.start_time,
        span.end_time,
        _attributes(getattr(span, "_attributes", None) or span.attributes),
        tuple((_context(link.context), _attributes(link.attributes)) for link in span.links),
        tuple((event.name, event.timestamp, _attributes(event.attributes)) for event in span.events),
        (status.status_code.value, status.description),
        (scope.name, scope.version, scope.schema_url) if scope is not None else None,
        index,
        (span.dropped_attributes, span.dropped_events, span.dropped_links),
    )


def encode(spans: Sequence[Any]) -> bytes:
    """The frame body of finished spans: SDK ReadableSpans, compacted, and LightSpans and RecordSpans (plain values
    already)."""
    resources: dict[int, int] = {}
    resource_list: list = []
    compacted, groups = [], []
    for span in spans:
        if isinstance(span, RecordSpans):
            groups.append(span.frame(_resource_index(span.provider.resource, resources, resource_list)))
        elif isinstance(span, LightSpan):
            compacted.append(span.compacted(_resource_index(span.tracer.provider.resource, resources, resource_list)))
        else:
            compacted.append(compact(span, resources, resource_list))
    return marshal.dumps((resource_list, compacted, groups))


class SpanPipe:
    """A SpanExporter (duck-typed: the SDK's BatchSpanProcessor only calls export/shutdown/force_flush) that writes
    spans to an export child process."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._closed = False
        self._child: subprocess.Popen | None = self._start()

    def _start(self) -> subprocess.Popen:
        # the child must import the same orderstream and OpenTelemetry as this process
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        return subprocess.Popen(
            [sys.executable, "-m", "orderstream.telemetry.export", self.endpoint],
            stdin=subprocess.PIPE,
            env=env,
            close_fds=True,
        )

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        frame = encode(spans)
        with self._lock:
            if self._closed:
                return SpanExportResult.FAILURE
            if self._child is None or self._child.poll() is not None:
                if self._child is not None:
                    log.warning("the span export process exited (code %s); starting another", self._child.returncode)
                self._child = self._start()
            try:
                stdin: BinaryIO = self._child.stdin  # type: ignore[assignment]
                stdin.write(_LENGTH.pack(len(frame)) + frame)  # blocks (without the GIL) while the child is behind
                stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                log.warning("the span export process is gone (%s): %d spans dropped", exc, len(spans))
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # what export() wrote is the child's to send; shutdown() waits for it

    def shutdown(self) -> None:
        """Close the pipe and wait for the child to export what it read (up to SHUTDOWN_WAIT_S)."""
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError):
            child.stdin.close()  # type: ignore[union-attr]
        try:
            child.wait(SHUTDOWN_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("the span export process did not finish in %.0f s: stopped", SHUTDOWN_WAIT_S)
            child.kill()
            child.wait()


# --- the child ---------------------------------------------------------------------------------------------------


def _read_frames(stream: BinaryIO) -> Any:
    while True:
        head = stream.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return
        (length,) = _LENGTH.unpack(head)
        body = stream.read(length)
        if len(body) < length:
            return
        yield marshal.loads(body)


def rebuild(frame: tuple) -> list[Any]:
    """The SDK ReadableSpans a frame holds: its compacted spans (the inverse of compact()) and its record spans."""
    from opentelemetry.sdk.resources import Resource

    resource_values, compacted, groups = frame
    resources = [Resource(attributes, schema_url) for attributes, schema_url in resource_values]
    for group in groups:
        compacted.extend(expand(group))
    return readable_spans(compacted, resources)


def readable_record_spans(spans: RecordSpans, resource: Any) -> list[Any]:
    """The SDK ReadableSpans of a batch's record spans (for a span processor other than the export one)."""
    return readable_spans(expand(spans.frame(0)), [resource])


def readable_spans(compacted: list[tuple], resources: list[Any]) -> list[Any]:
    """SDK ReadableSpans of spans in compact()'s form; their resources are indexes into `resources`."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    class Span(ReadableSpan):
        """A ReadableSpan that keeps the counts its original dropped (the encoder exports them)."""

        dropped: tuple[int, int, int] = (0, 0, 0)

        @property
        def dropped_attributes(self) -> int:
            return self.dropped[0]

        @property
        def dropped_events(self) -> int:
            return self.dropped[1]

        @property
        def dropped_links(self) -> int:
            return self.dropped[2]

    def context(values: tuple | None) -> Any:
        if values is None:
            return None
        trace_id, span_id, flags, remote, state = values
        trace_state = TraceState.from_header([state]) if state else TraceState()
        return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(flags), trace_state=trace_state)

    spans = []
    for (
        name,
        own,
        parent,
        kind,
        start,
        end,
        attributes,
        links,
        events,
        (code, description),
        scope,
        resource,
        dropped,
    ) in compacted:
        span = Span(
            name,
            context=context(own),
            parent=context(parent),
            resource=resources[resource],
            attributes=attributes,
            events=tuple(Event(n, a, timestamp=t) for n, t, a in events),
            links=tuple(Link(context(c), a) for c, a in links),
            kind=SpanKind(kind),
            status=Status(StatusCode(code), description),
            start_time=start,
            end_time=end,
            instrumentation_scope=InstrumentationScope(*scope) if scope is not None else None,
        )
        span.dropped = tuple(dropped)
        spans.append(span)
    return spans


def request_of(frame: tuple) -> bytes:
    """The OTLP ExportTraceServiceRequest of a frame, serialized: every span written as protobuf bytes straight from
    the plain values that crossed the pipe (otlp_wire), without rebuilding an SDK span or a protobuf message
    (tests/unit/test_span_export.py checks the bytes parse into what the SDK's encoder makes of the same spans)."""
    resources, compacted, groups = frame
    return otlp_wire.request(resources, compacted, groups)


def _sender(exporter: Any) -> Any:
    """The exporter's HTTP client's export(bytes) (its retries, headers, TLS and compression settings), or None
    where this version of the OTLP exporter has no such client: then frames go through exporter.export()."""
    client = getattr(exporter, "_client", None)
    send = getattr(client, "export", None)
    return send if callable(send) else None


def main(argv: list[str] | None = None) -> int:
    """python -m orderstream.telemetry.export ENDPOINT: export the spans read from stdin over OTLP/HTTP."""
    import signal

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole group: stop with the parent's pipe
    # Exporting is background work: on a busy machine the service's threads go first (the pipe and then the span
    # queue take up the slack, and drop spans when full), not the other way round.
    os.nice(EXPORT_NICENESS)
    endpoint = (argv if argv is not None else sys.argv[1:])[0]
    exporter = OTLPSpanExporter(endpoint=endpoint)
    send = _sender(exporter)
    try:
        for frame in _read_frames(sys.stdin.buffer):
            if send is None:
                exporter.export(rebuild(frame))  # a failure is the exporter's to log; the next frame goes on
                continue
            send(request_of(frame))  # the client logs a failure; the next frame goes on
    finally:
        exporter.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
