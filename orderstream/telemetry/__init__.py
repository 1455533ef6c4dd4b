"""Observability: Prometheus metrics, OpenTelemetry traces, and the trace context in Kafka record headers.

A low layer (below kafka and schemas, above the domain) so the runtimes, the producers and the HTTP API can all use it.
Every metric and span is listed in docs/OBSERVABILITY.md. Tracing is off unless the setting otlp_endpoint is set (or a
test installs a provider): then the runtimes hold no tracer and pay one `is None` check per batch, nothing per record.
"""
