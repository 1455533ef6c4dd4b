"""The process's OpenTelemetry tracer provider: set up from the settings, or installed by a test.

Off by default. configure(settings, service) does nothing unless settings.otlp_endpoint is set; then it builds an SDK
TracerProvider (resource service.name=orderstream-<service>, sampler parent-based with trace_sampling_ratio for new
traces) and a batch span processor exporting over OTLP/HTTP to that endpoint; projection stores created while
tracing is on make SQL spans (trace_engine). The provider is flushed and shut down at exit.

Like OpenTelemetry's own global provider, the active provider is per process (set once, at the edge: the first
component that is built with the settings). tracer() returns None while none is active, and the runtimes keep that
None: with tracing off they do no tracing work at all, not even per record.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import Any

from orderstream.config import Settings

# The span limits: a batch span links to the trace context of each of its records, up to this many (OpenTelemetry's
# default link limit). A live batch is smaller; a catch-up batch links its first MAX_LINKS records'.
MAX_LINKS = 128

_lock = threading.Lock()
_active: dict[str, Any] = {}  # "provider": the active TracerProvider


class TracingUnavailable(RuntimeError):
    """otlp_endpoint is set but the OpenTelemetry SDK or its OTLP exporter is not installed."""


def configure(settings: Settings, service: str) -> None:
    """Turn tracing on for this process when settings.otlp_endpoint is set (idempotent: the first call wins)."""
    if settings.otlp_endpoint is None or "provider" in _active:
        return
    with _lock:
        if "provider" in _active:
            return
        try:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: F401 - the child's
        except ImportError as exc:
            raise TracingUnavailable(
                f"otlp_endpoint is set but OpenTelemetry is not installed ({exc.name}): "
                "pip install 'orderstream[tracing]'"
            ) from None
        provider = new_provider(service, settings.trace_sampling_ratio)
        provider.add_span_processor(otlp_processor(settings.otlp_endpoint))
        trace.set_tracer_provider(provider)  # for any other instrumented library in the process
        _install(provider)
        atexit.register(provider.shutdown)  # exports what is still queued (a short-lived `place` included)


# The batch span processor hands spans to the export child process (export.py) in batches of up to EXPORT_BATCH,
# at least every EXPORT_DELAY_MS. In this process an export is only turning the spans into plain values and writing
# them to a pipe; the protobuf encoding and the HTTP POST happen in the child, off this process's GIL. The cadence is
# the SDK's default: every export wakes the export thread here and a POST there, and at 200 ms (this project's first
# choice) the export processes of a pipeline at 500 orders/s took 0.06 cores, at 5 s 0.03. The queue is 4x the
# SDK's, for bursts. OTEL_BSP_SCHEDULE_DELAY / OTEL_BSP_MAX_EXPORT_BATCH_SIZE / OTEL_BSP_MAX_QUEUE_SIZE override these.
EXPORT_DELAY_MS = 5000
EXPORT_BATCH = 512
EXPORT_QUEUE = 8192


def otlp_processor(endpoint: str) -> Any:
    """The span processor that exports over OTLP/HTTP to `endpoint`, from a child process (export.SpanPipe)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from orderstream.telemetry.export import SpanPipe

    class PipeProcessor(BatchSpanProcessor):
        """Queues a batch's RecordSpans as they are: SpanPipe sends their rows to the export process."""

        takes_record_spans = True

    return span_processor(PipeProcessor, SpanPipe(endpoint))


def span_processor(batch_processor: type, exporter: Any) -> Any:
    """A BatchSpanProcessor for `exporter` with the export cadence above (unless the OTEL_BSP_* variables say)."""
    import os

    options: dict[str, int] = {}
    if "OTEL_BSP_SCHEDULE_DELAY" not in os.environ:
        options["schedule_delay_millis"] = EXPORT_DELAY_MS
    if "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" not in os.environ:
        options["max_export_batch_size"] = EXPORT_BATCH
    if "OTEL_BSP_MAX_QUEUE_SIZE" not in os.environ:
        options["max_queue_size"] = EXPORT_QUEUE
    return batch_processor(exporter, **options)


def new_provider(service: str, sampling_ratio: float = 1.0) -> Any:
    """An SDK TracerProvider for orderstream-<service> with the project's sampler and span limits (no exporter)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    return _provider_class()(
        resource=Resource.create({"service.name": f"orderstream-{service}", "service.namespace": "orderstream"}),
        sampler=ParentBased(TraceIdRatioBased(sampling_ratio)),
        span_limits=SpanLimits(max_links=MAX_LINKS),
    )


def _provider_class() -> type:
    from opentelemetry.sdk.trace import TracerProvider

    class Provider(TracerProvider):
        """The SDK's TracerProvider, which also takes a batch's record spans as plain values (record_spans.py)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.processors: list[Any] = []

        def add_span_processor(self, span_processor: Any) -> None:
            super().add_span_processor(span_processor)
            self.processors.append(span_processor)

        def light_tracer(self, scope: str, version: str | None = None) -> Any:
            """A tracer of LightSpans (light_spans.py): the runtimes' batch spans and the SQL spans."""
            from orderstream.telemetry.light_spans import LightTracer

            return LightTracer(self, scope, version)

        def emit_light_span(self, span: Any) -> None:
            """Hand an ended LightSpan to every span processor: as it is to the export one, as an SDK span to others."""

            def readable() -> list[Any]:
                from orderstream.telemetry.export import readable_spans

                return readable_spans([span.compacted(0)], [self.resource])

            self._emit(span, readable)

        def emit_record_spans(self, spans: Any) -> None:
            """Hand a batch's RecordSpans to every span processor: whole to the export one, as SDK spans to others."""

            def readable() -> list[Any]:
                from orderstream.telemetry.export import readable_record_spans

                return readable_record_spans(spans, self.resource)

            self._emit(spans, readable)

        def _emit(self, item: Any, readable: Callable[[], list[Any]]) -> None:
            """`item` as it is to the processors that take plain values (the export one, tracing.otlp_processor); the
            SDK ReadableSpans that readable() makes of it, made once, to every other."""
            spans = None
            for processor in self.processors:
                if getattr(processor, "takes_record_spans", False):
                    processor.on_end(item)
                    continue
                if spans is None:
                    spans = readable()
                for span in spans:
                    processor.on_end(span)

    return Provider


def install(provider: Any) -> None:
    """Make `provider` (one from new_provider()) the active one (tests: a provider with an in-memory exporter).
    Components built afterwards trace; uninstall() turns tracing off again for components built after it."""
    with _lock:
        _install(provider)


def _install(provider: Any) -> None:
    _active["provider"] = provider


def trace_engine(engine: Any) -> Any:
    """Make SQL spans for this engine's statements (opentelemetry-instrumentation-sqlalchemy's engine hooks) when
    tracing is on; with tracing off, return it untouched.

    Per engine rather than the instrumentor's patch of create_engine: a module that imported create_engine before
    tracing was set up would keep the unpatched one. The engine's spans go to whichever provider is active when a
    statement runs (none: no span), as LightSpans (light_spans.py: the instrumentation's hooks and attributes, without
    an SDK span per statement). SQLAlchemy 2.1 is past the instrumentation's declared range, but the engine events
    it hooks are unchanged (tests/integration/test_tracing.py checks the SQL spans)."""
    if "provider" not in _active:
        return engine
    try:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpUpDownCounter
    except ImportError:  # the SQL spans are optional: traces go on without them
        return engine
    tracer = _active_provider().get_tracer("opentelemetry.instrumentation.sqlalchemy")
    EngineTracer(tracer, engine, NoOpUpDownCounter("db.client.connections.usage"))
    return engine


def uninstall() -> None:
    """No active provider any more: components built afterwards do not trace; traced engines make no more spans."""
    with _lock:
        _active.pop("provider", None)


def _active_provider_class() -> type:
    from opentelemetry import trace

    class ActiveTracer(trace.Tracer):
        def __init__(self, args: tuple, kwargs: dict) -> None:
            self._args, self._kwargs, self._for = args, kwargs, (None, None)

        def _tracer(self) -> Any:
            provider = _active.get("provider")
            if provider is None:
                return trace.NoOpTracer()
            if self._for[0] is not provider:
                light = getattr(provider, "light_tracer", None)  # one of new_provider()'s: spans as plain values
                made = light(*self._args, **self._kwargs) if light else provider.get_tracer(*self._args, **self._kwargs)
                self._for = (provider, made)
            return self._for[1]

        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            return self._tracer().start_span(*args, **kwargs)

        def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
            return self._tracer().start_as_current_span(*args, **kwargs)

    class ActiveProvider(trace.TracerProvider):
        """A TracerProvider whose tracers use the active provider of the moment (none: no-op)."""

        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            return ActiveTracer(args, kwargs)

    return ActiveProvider


def _active_provider() -> Any:
    """Built on first use, so nothing imports OpenTelemetry before tracing is on."""
    return _active_provider_class()()


def provider() -> Any:
    """The active provider (one from new_provider()), or None when tracing is off."""
    return _active.get("provider")


def tracer(name: str) -> Any:
    """A tracer of the active provider, or None when tracing is off."""
    provider = _active.get("provider")
    return None if provider is None else provider.get_tracer(f"orderstream.{name}")
