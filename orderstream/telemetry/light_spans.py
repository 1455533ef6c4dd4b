"""Spans kept as plain values until export: the runtimes' batch spans and the SQL spans of their transactions.

An SDK span (the SDK's Tracer.start_span and Span.end, then export.compact() in the export thread) cost 38 us of
Python as a batch span and 76 us as a SQL span (the instrumentation's hooks included) in a warm loop on this machine,
and live traffic is mostly such spans: one order placed makes 20 batch spans and 51 SQL spans across the services and
the views (docs/OBSERVABILITY.md, "Cost"), three SQL spans per batch of a view. As LightSpans: 21 and 48 us.
A LightSpan is what the SDK's span is to an exporter, without the machinery an exporter never sees (BoundedAttributes,
per-span locks, span processors' on_start, the SDK's own span metrics): its name, context, parent, kind, times,
attributes, links, events and status, in plain attributes. LightTracer makes them as the SDK's Tracer does: the
provider's sampler decides where a trace begins and a child follows its parent (the provider's sampler is
parent-based, so that is its answer), the ids are random, and the trace flags are the SDK's (SAMPLED, and
RANDOM_TRACE_ID for a trace begun here or by a random-id parent). A span that is not sampled is the API's
NonRecordingSpan, as the SDK returns.

When a LightSpan ends, the provider hands it (tracing.Provider.emit_light_span) to its span processors: the export
processor queues it as it is and SpanPipe marshals export.compact()'s tuple of it (compacted()); any other processor
(a test's in-memory exporter) gets the SDK ReadableSpan of the same values (export.readable_spans). The SQL spans
come from the SQLAlchemy instrumentation's own engine hooks, given a LightTracer (tracing.trace_engine).
"""

from __future__ import annotations

import contextlib
import random
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

_SCALARS = (str, bool, int, float)
_SAMPLED, _RANDOM_TRACE_ID = 0x01, 0x02  # W3C Trace Context (level 2) trace flags, as the SDK sets them


def _clean(value: Any) -> Any:
    """An attribute value as a span keeps it (a scalar, or a sequence of scalars as a tuple), or None to leave it
    out."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = tuple(v for v in value if isinstance(v, _SCALARS))
        return items if len(items) == len(value) else None
    return None


class LightTracer(trace.Tracer):
    """A Tracer whose recording spans are LightSpans of `provider` (one from tracing.new_provider()) under `scope`."""

    def __init__(self, provider: Any, scope: str, version: str | None = None) -> None:
        self.provider = provider
        self.scope = (scope, version, None)

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        links = tuple(links or ())
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            # the provider's sampler is parent-based (new_provider): a child is sampled when its parent is, and
            # keeps its trace state (ParentBased's answer, without asking it: a SQL span is a child of its batch)
            trace_id, sampled, state, extra = parent.trace_id, parent.trace_flags.sampled, parent.trace_state, None
            random_id = int(parent.trace_flags) & _RANDOM_TRACE_ID
        else:
            parent, trace_id, random_id = None, random.getrandbits(128) or 1, _RANDOM_TRACE_ID
            result = self.provider.sampler.should_sample(context, trace_id, name, kind, attributes, links)
            sampled, state, extra = result.decision.is_sampled(), result.trace_state, result.attributes
        flags = (_SAMPLED if sampled else 0) | random_id
        own = SpanContext(
            trace_id, random.getrandbits(64) or 1, is_remote=False, trace_flags=TraceFlags(flags), trace_state=state
        )
        if not sampled:
            return trace.NonRecordingSpan(own)
        span = LightSpan(self, name, own, parent, kind, links, start_time or time.time_ns())
        for key, value in {**(extra or {}), **(attributes or {})}.items():
            span.set_attribute(key, value)
        return span

    @contextlib.contextmanager
    def start_as_current_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        """start_span(), made the current span for the block (as the SDK's Tracer does it)."""
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class LightSpan(trace.Span):
    """A recording span as plain values (see the module's docstring); ended once, then handed to the provider."""

    def __init__(
        self, tracer: LightTracer, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
        links: tuple[Link, ...], start_time: int,
    ) -> None:  # fmt: skip
        self.tracer = tracer
        self.name = name
        self.context = context  # what the SDK's batch processor reads (context.trace_flags.sampled)
        self.parent = parent
        self.kind = kind
        self.links = links
        self.start_time = start_time
        self.end_time: int | None = None
        self.attributes: dict[str, Any] = {}
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self.status = (StatusCode.UNSET.value, None)

    # --- the API -----------------------------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        value = _clean(value)
        if value is not None and self.end_time is None:
            self.attributes[key] = value

    def set_attributes(self, attributes: Any) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if self.end_time is None:
            cleaned = {k: c for k, v in (attributes or {}).items() if (c := _clean(v)) is not None}
            self.events.append((name, timestamp or time.time_ns(), cleaned))

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        if self.end_time is None and context.is_valid:
            self.links = (*self.links, Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK: OK is final; UNSET changes nothing; a description goes with ERROR only."""
        if self.end_time is not None or self.status[0] == StatusCode.OK.value:
            return
        if isinstance(status, Status):
            code, description = status.status_code, status.description
        else:
            code = status
        if code is StatusCode.UNSET:
            return
        self.status = (code.value, description if code is StatusCode.ERROR else None)

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        """The SDK's `exception` event: the exception's type (with its module, but for a builtin), message and stack
        trace."""
        module, name = type(exception).__module__, type(exception).__qualname__
        self.add_event(
            "exception",
            {
                "exception.type": f"{module}.{name}" if module and module != "builtins" else name,
                "exception.message": str(exception),
                "exception.stacktrace": "".join(traceback.format_exception(exception)),
                "exception.escaped": str(escaped),
                **(attributes or {}),
            },
            timestamp,
        )

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or time.time_ns()
        self.tracer.provider.emit_light_span(self)

    # --- the export ----------------------------------------------------------------------------------------------

    def compacted(self, resource: int) -> tuple:
        """This span in export.compact()'s form; `resource` is the index of its provider's resource in the frame."""
        return (
            self.name,
            _plain(self.context),
            _plain(self.parent),
            self.kind.value,
            self.start_time,
            self.end_time,
            self.attributes,
            tuple((_plain(link.context), dict(link.attributes or {})) for link in self.links),
            tuple(self.events),
            self.status,
            self.tracer.scope,
            resource,
            (0, 0, 0),
        )


def _plain(context: SpanContext | None) -> tuple | None:
    """export._context()'s form of a SpanContext."""
    if context is None:
        return None
    state = context.trace_state.to_header() if context.trace_state else ""
    return (context.trace_id, context.span_id, int(context.trace_flags), context.is_remote, state)
