"""What a command sender reports: commands sent (a metric), and a `send` span whose context the command carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orderstream.config import Settings
from orderstream.telemetry import metrics, propagation, tracing


class SenderTelemetry:
    def __init__(self, settings: Settings, logical_topic: str, service: str = "cli") -> None:
        tracing.configure(settings, service)
        self.tracer = tracing.tracer("producer")  # None: tracing off
        self.topic = logical_topic

    def send(self, command: Any, produce: Callable[[list[tuple[str, bytes]]], Any]) -> Any:
        """Run produce(extra headers) - it returns once the broker acknowledged - inside a PRODUCER span (when
        tracing) whose context the extra headers carry; count the command once it is acknowledged."""
        result = produce([]) if self.tracer is None else self._traced(command, produce)
        metrics.commands_sent.labels(type(command).__name__).inc()
        return result

    def _traced(self, command: Any, produce: Callable[[list[tuple[str, bytes]]], Any]) -> Any:
        from opentelemetry.trace import SpanKind

        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": self.topic,
            "messaging.message.id": command.command_id,
            "messaging.kafka.message.key": command.aggregate_id,
            "orderstream.command": type(command).__name__,
        }
        with self.tracer.start_as_current_span(
            f"send {self.topic}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            sent = produce(propagation.headers_of(span.get_span_context()))
            partition = getattr(sent, "partition", None)
            if partition is not None:
                span.set_attribute("messaging.destination.partition.id", str(partition))
            return sent
