"""What the processor runtime reports: its metrics, and its spans when tracing is on.

The processor calls into ProcessorTelemetry at a handful of points (batch start, each record when tracing, commit,
failure, rebalance, dead letter), so its own code stays about Kafka transactions. Metric updates are per batch, with
per-partition sums made in one pass over the batch's records; tracing work happens only when `tracer` is not None.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orderstream.config import Settings
from orderstream.telemetry import metrics, spans, tracing
from orderstream.telemetry.lag import cached_high_watermark
from orderstream.telemetry.record_spans import RecordSpans

SCOPE = "orderstream.processor"  # the instrumentation scope of the processor's spans


class BatchTrace:
    """The spans of one batch: the batch span (an SDK span), and one span per record (a row of RecordSpans). While a
    record is decided, `headers` holds its span's context as ce_traceparent (formatted once per record, however many
    records it produces) and `current` its span's row (which a dead letter marks failed); between records both are
    empty.

    The record span is not OpenTelemetry's current span: nothing the processor calls while deciding reads the current
    context (docs/OBSERVABILITY.md, "Cost")."""

    def __init__(
        self, provider: Any, tracer: Any, stage: str, service: str, group: str, records: list[Any], logical: dict
    ) -> None:
        self.logical = logical
        attributes = {"orderstream.service": service, "orderstream.stage": stage}
        contexts = spans.contexts_of(records)
        self.contexts = {id(record): context for record, context in zip(records, contexts, strict=True)}
        self.span = spans.start_batch_span(
            tracer,
            stage,
            records,
            contexts,
            {**attributes, "messaging.consumer.group.name": group},
        )
        self.records = RecordSpans(provider, SCOPE, "process", self.span.get_span_context(), attributes)
        self.current: list | None = None
        self.headers: list[tuple[str, bytes]] = []

    def wrap(self, handle: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        records = self.records

        def traced(batch: Any, record: Any) -> None:
            topic = record.topic()
            row, self.headers = records.start(
                self.contexts.get(id(record)),
                self.logical.get(topic, topic),
                record.partition(),
                record.offset(),
                record.key(),
            )
            self.current = row
            try:
                handle(batch, record)
            except BaseException as exc:
                records.end(row, exc)
                raise
            else:
                records.end(row)
            finally:
                self.current, self.headers = None, []

        return traced

    def end(self, error: Any = None) -> None:
        self.records.finish()
        spans.end_with_error(self.span, error)


class ProcessorTelemetry:
    """Metrics (always) and tracing (when on) of one processor stage."""

    def __init__(self, settings: Settings, service: str, stage: str, group: str, logical: dict[str, str]) -> None:
        tracing.configure(settings, service)
        self.provider = tracing.provider()  # None: tracing off
        self.tracer = None if self.provider is None else self.provider.light_tracer(SCOPE)
        self.service, self.stage, self.group = service, stage, group
        # physical topic -> its name without the prefix (a retry read from <input>.dlq is labelled so, not as the input)
        prefix = settings.topic_prefix
        self.logical = {topic: topic[len(prefix) :] if topic.startswith(prefix) else topic for topic in logical}
        labels = (service, stage)
        self._batches = metrics.batches.labels(*labels)
        self._batch_duration = metrics.batch_duration.labels(*labels)
        self._commit_duration = metrics.commit_duration.labels(*labels)
        self._aborts = metrics.aborts.labels(*labels)
        self._fencings = metrics.fencings.labels(*labels)
        self._events_out = metrics.events_out.labels(*labels)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._trace: BatchTrace | None = None  # the batch being decided, when tracing

    # --- tracing -----------------------------------------------------------------------------------------------

    def trace_batch(self, records: list[Any]) -> BatchTrace | None:
        if self.tracer is None:
            return None
        self._trace = BatchTrace(
            self.provider, self.tracer, self.stage, self.service, self.group, records, self.logical
        )
        return self._trace

    def context_headers(self) -> list[tuple[str, bytes]]:
        """The headers that carry the context of the record being decided to what the processor produces for it
        ([] outside a record: replies)."""
        return self._trace.headers if self._trace is not None else []

    # --- metrics -----------------------------------------------------------------------------------------------

    def timed_commit(self, commit: Callable[[], None]) -> None:
        began = time.perf_counter()
        commit()
        self._commit_duration.observe(time.perf_counter() - began)

    def committed(self, records: list[Any], events: int, began: float, consumer: Any, trace: BatchTrace | None) -> None:
        """A batch's transaction committed: count it, its records per partition, its events; lag and last event
        time per partition. `began` is time.monotonic() at the batch's start."""
        self._batch_duration.observe(time.monotonic() - began)
        self._batches.inc()
        if events:
            self._events_out.inc(events)
        counts: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], Any] = {}
        for record in records:
            where = (record.topic(), record.partition())
            counts[where] = counts.get(where, 0) + 1
            last[where] = record
        for (topic, partition), count in counts.items():
            logical = self.logical.get(topic, topic)
            self._child(metrics.records_in, self.service, self.stage, logical, str(partition)).inc(count)
            record = last[(topic, partition)]
            _consumer_gauges(consumer, self.stage, topic, logical, partition, record.offset() + 1, record, self._child)
        if trace is not None:
            self._trace = None
            trace.end()

    def aborted(self, error: Any, trace: BatchTrace | None) -> None:
        """The batch's transaction failed and is aborted (the batch is retried); a fatal error fenced the producer."""
        self._aborts.inc()
        fatal = getattr(error, "fatal", None)
        if callable(fatal) and fatal():
            self._fencings.inc()
        if trace is not None:
            self._trace = None
            trace.end(error)

    def rebalanced(self, event: str, partitions: list[Any]) -> None:
        self._child(metrics.rebalances, self.stage, event).inc()

    def dead_lettered(self, record: Any, reason: str, error: Exception) -> None:
        topic = record.topic()
        self._child(metrics.dead_letters, self.stage, self.logical.get(topic, topic), reason).inc()
        if self._trace is not None and self._trace.current is not None:  # the record's span ends in error
            RecordSpans.fail(self._trace.current, error, reason)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


def _consumer_gauges(
    consumer: Any, name: str, topic: str, logical: str, partition: int, position: int, record: Any, child: Callable
) -> None:
    """Lag (the cached high watermark from the last fetch minus the position) and the last record's timestamp."""
    high = cached_high_watermark(consumer, topic, partition)
    if high is not None:
        child(metrics.lag, name, logical, str(partition)).set(max(0, high - position))
    kind, stamp = record.timestamp()
    if kind and stamp > 0:
        child(metrics.last_event_time, name, logical, str(partition)).set(stamp / 1000)
