"""What a command sender reports: commands sent (a metric), and a `send` span whose context the command carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from orderstream.config import Settings
from orderstream.telemetry import metrics, propagation, tracing

Headers = list[tuple[str, bytes]]


class SenderTelemetry:
    """send()/send_async() run the caller's produce(extra headers) - which returns once the broker acknowledged - in a
    PRODUCER span when tracing is on (the extra headers carry its context; a child of the current span, e.g. the
    HTTP request's), and count the command once it is acknowledged."""

    def __init__(self, settings: Settings, service: str = "cli") -> None:
        tracing.configure(settings, service)
        self.tracer = tracing.tracer("producer")  # None: tracing off

    def send(self, command: Any, topic: str, produce: Callable[[Headers], Any]) -> Any:
        with self._span(command, topic) as span:
            sent = produce(self._headers(span))
            self._sent(command, span, sent)
        return sent

    async def send_async(self, command: Any, topic: str, produce: Callable[[Headers], Awaitable[Any]]) -> Any:
        with self._span(command, topic) as span:
            sent = await produce(self._headers(span))
            self._sent(command, span, sent)
        return sent

    def _span(self, command: Any, topic: str) -> AbstractContextManager[Any]:
        if self.tracer is None:
            return nullcontext()
        from opentelemetry.trace import SpanKind

        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": command.command_id,
            "messaging.kafka.message.key": command.aggregate_id,
            "orderstream.command": type(command).__name__,
        }
        return self.tracer.start_as_current_span(f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes)

    @staticmethod
    def _headers(span: Any) -> Headers:
        return [] if span is None else propagation.headers_of(span.get_span_context())

    @staticmethod
    def _sent(command: Any, span: Any, sent: Any) -> None:
        metrics.commands_sent.labels(type(command).__name__).inc()
        partition = getattr(sent, "partition", None)
        if span is not None and partition is not None:
            span.set_attribute("messaging.destination.partition.id", str(partition))
