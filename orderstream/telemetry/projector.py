"""What the projector runtime reports: a view's metrics, and its spans when tracing is on.

The writer thread applies a batch through apply(), which times it and, once the SQL transaction has committed,
counts the events applied per type and observes each event's end-to-end age (commit time minus the record's Kafka
timestamp) in one pass. With tracing on, the batch's span is current while it is applied (so the SQL spans of the
SQLAlchemy instrumentation are its children) and every record that carries a trace context gets an `apply` span in
that trace, spanning the batch's transaction.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from orderstream.config import Settings
from orderstream.telemetry import metrics, spans, tracing
from orderstream.telemetry.lag import cached_high_watermark
from orderstream.telemetry.record_spans import RecordSpans

SCOPE = "orderstream.projector"  # the instrumentation scope of the projector's spans


class ProjectorTelemetry:
    """Metrics (always) and tracing (when on) of one view's projector."""

    def __init__(self, settings: Settings, view: str, group: str) -> None:
        tracing.configure(settings, "projections")
        self.provider = tracing.provider()  # None: tracing off
        self.tracer = None if self.provider is None else self.provider.light_tracer(SCOPE)
        self.view, self.group = view, group
        self.prefix = settings.topic_prefix
        self.batch_size = settings.projection_batch_size
        self.attributes = {"orderstream.view": view, "messaging.consumer.group.name": group}
        self._apply_duration = metrics.view_apply_duration.labels(view)
        self._end_to_end = metrics.view_end_to_end.labels(view)
        self._children: dict[tuple[Any, ...], Any] = {}

    def logical(self, topic: str) -> str:
        return topic[len(self.prefix) :] if self.prefix and topic.startswith(self.prefix) else topic

    def counting(self, hook: Callable[..., None]) -> Callable[..., None]:
        """The failure hook, counting every record handed to it as a dead letter (by topic and stage)."""

        def counted(message: Any, error: Exception, stage: str = "decode") -> None:
            hook(message, error, stage)  # a hook that raises stops the projector: nothing was dead-lettered
            self._child(metrics.dead_letters, self.view, self.logical(message.topic()), stage).inc()

        return counted

    def apply(self, write: Callable[[list, list], Any], messages: list, records: list) -> Any:
        """Run the writer's apply of one batch, timed (and traced when on); count what it committed."""
        began = time.perf_counter()
        traced = self.tracer is not None
        positions = self._traced(write, messages, records) if traced else write(messages, records)
        committed = time.time()
        self._apply_duration.observe(time.perf_counter() - began)
        # comprehensions, not one loop with appends: this runs once per event of a rebuild
        types = Counter([type(record.event).__name__ for record in records if record.event is not None])
        stamps = [message.timestamp() for message in messages]
        ages = [committed - stamp / 1000 for kind, stamp in stamps if kind and stamp > 0]
        last = {  # a partition's records come in offset order: the dict keeps its last one's
            (record.topic, record.partition): stamp
            for record, (kind, stamp) in zip(records, stamps, strict=True)
            if kind and stamp > 0
        }
        # The applied counters go LAST: a scrape (another process, under `run all`) that sees a batch's events
        # applied also sees their end-to-end ages and timestamps, so the counts agree whenever they are read.
        metrics.observe_many(self._end_to_end, ages)
        for (topic, partition), stamp in last.items():
            self._child(metrics.last_event_time, self.view, self.logical(topic), str(partition)).set(stamp / 1000)
        for name, count in types.items():
            self._child(metrics.view_events_applied, self.view, name).inc(count)
        return positions

    def _traced(self, write: Callable[[list, list], Any], messages: list, records: list) -> Any:
        from opentelemetry import trace

        began = time.time_ns()
        catching_up = len(messages) >= self.batch_size  # a full batch: the projector is behind
        traced = spans.first_contexts(messages, spans.CATCH_UP_TRACED if catching_up else tracing.MAX_LINKS)
        batch = spans.start_batch_span(self.tracer, self.view, messages, [c for _, c in traced], self.attributes)
        try:
            with trace.use_span(batch, end_on_exit=False, record_exception=True):
                positions = write(messages, records)
        except BaseException as exc:
            spans.end_with_error(batch, exc)
            raise
        # the records that carry a context join its trace with an `apply` span, spanning the batch's transaction
        records = RecordSpans(self.provider, SCOPE, "apply", batch.get_span_context(), {"orderstream.view": self.view})
        for message, remote in traced:
            row, _ = records.start(
                remote,
                self.logical(message.topic()),
                message.partition(),
                message.offset(),
                message.key(),
                began,
                carry=False,  # a view produces nothing: no context to hand on
            )
            records.end(row)
        records.finish()
        batch.end()
        return positions

    def settled(self, consumer: Any, positions: dict[tuple[str, int], int]) -> None:
        """The batch's positions are committed: lag per partition against the cached high watermark."""
        for (topic, partition), position in positions.items():
            high = cached_high_watermark(consumer, topic, partition)
            if high is not None:
                self._child(metrics.lag, self.view, self.logical(topic), str(partition)).set(max(0, high - position))

    def rebalanced(self, event: str) -> None:
        self._child(metrics.rebalances, self.view, event).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child
