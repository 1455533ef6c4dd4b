"""The process's OpenTelemetry tracer provider: set up from the settings, or installed by a test.

Off by default. configure(settings, service) does nothing unless settings.otlp_endpoint is set; then it builds an SDK
TracerProvider (resource service.name=orderstream-<service>, sampler parent-based with trace_sampling_ratio for new
traces), a batch span processor exporting over OTLP/HTTP to that endpoint, and turns on the SQLAlchemy
instrumentation (every engine created afterwards makes SQL spans). The provider is flushed and shut down at exit.

Like OpenTelemetry's own global provider, the active provider is per process (set once, at the edge: the first
component that is built with the settings). tracer() returns None while none is active, and the runtimes keep that
None: with tracing off they do no tracing work at all, not even per record.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from orderstream.config import Settings

# The span limits: a batch span links to the trace context of each of its records, up to this many (OpenTelemetry's
# default link limit). A live batch is smaller; a catch-up batch links its first MAX_LINKS records'.
MAX_LINKS = 128

_lock = threading.Lock()
_active: dict[str, Any] = {}  # "provider" -> the active TracerProvider, "instrumentor" -> the SQLAlchemy one


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
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise TracingUnavailable(
                f"otlp_endpoint is set but OpenTelemetry is not installed ({exc.name}): "
                "pip install 'orderstream[tracing]'"
            ) from None
        provider = new_provider(service, settings.trace_sampling_ratio)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
        trace.set_tracer_provider(provider)  # for any other instrumented library in the process
        _install(provider)
        atexit.register(provider.shutdown)  # exports what is still queued (a short-lived `place` included)


def new_provider(service: str, sampling_ratio: float = 1.0) -> Any:
    """An SDK TracerProvider for orderstream-<service> with the project's sampler and span limits (no exporter)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    return TracerProvider(
        resource=Resource.create({"service.name": f"orderstream-{service}", "service.namespace": "orderstream"}),
        sampler=ParentBased(TraceIdRatioBased(sampling_ratio)),
        span_limits=SpanLimits(max_links=MAX_LINKS),
    )


def install(provider: Any) -> None:
    """Make `provider` the active one (tests: a provider with an in-memory exporter). Components built afterwards
    trace; uninstall() turns tracing off again for components built after it."""
    with _lock:
        _install(provider)


def _install(provider: Any) -> None:
    _uninstall()
    _active["provider"] = provider
    try:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    except ImportError:  # the SQL spans are optional: traces go on without them
        return
    instrumentor = SQLAlchemyInstrumentor()
    # skip_dep_check: its declared range stops below SQLAlchemy 2.1, whose engine events it hooks are unchanged
    # (tests/integration/test_tracing.py checks the SQL spans appear)
    instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
    _active["instrumentor"] = instrumentor


def uninstall() -> None:
    with _lock:
        _uninstall()


def _uninstall() -> None:
    instrumentor = _active.pop("instrumentor", None)
    if instrumentor is not None:
        instrumentor.uninstrument()
    _active.pop("provider", None)


def tracer(name: str) -> Any:
    """A tracer of the active provider, or None when tracing is off."""
    provider = _active.get("provider")
    return None if provider is None else provider.get_tracer(f"orderstream.{name}")
