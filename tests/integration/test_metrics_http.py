"""The HTTP API's telemetry: request time by route template and status on GET /metrics, and a POST /orders whose
command carries the caller's trace (W3C traceparent in, ce_traceparent on the record out)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from orderstream.api.app import create_app
from orderstream.telemetry import tracing
from orderstream.topology import ORDERS_COMMANDS
from tests.support.orders import read_topic


@pytest.fixture
def exporter():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = tracing.new_provider("test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


def _samples(text: str, name: str) -> dict[tuple, float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_requests_are_timed_by_route_and_status_and_a_placed_order_carries_the_callers_trace(
    topics, exporter, monkeypatch
):
    from opentelemetry import trace

    # the process's global provider is the test's, as tracing.configure() makes it under `serve`: FastAPI's own
    # instrumentation (FastAPI 0.16x) would then add a second SERVER span per request
    monkeypatch.setattr(trace, "get_tracer_provider", tracing.provider)
    caller_trace = uuid.uuid4().int >> 1 or 1
    caller_span = 0x1234567890ABCDEF
    traceparent = f"00-{caller_trace:032x}-{caller_span:016x}-01"
    unknown = f"no-such-order-{uuid.uuid4().hex[:8]}"
    with TestClient(create_app(topics)) as client:
        placed = client.post(
            "/orders?wait=false",
            json={
                "customer_id": "c-1",
                "currency": "EUR",
                "lines": [{"sku": "S-1", "quantity": 1, "unit_price_minor": 100}],
            },
            headers={"traceparent": traceparent},
        )
        assert placed.status_code == 202, placed.text
        assert client.get(f"/orders/{unknown}").status_code in (404, 503)
        assert client.get("/healthz").status_code == 200
        scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    durations = _samples(scraped.text, "orderstream_http_request_duration_seconds_count")
    by_route = {(dict(k)["method"], dict(k)["route"], dict(k)["status"]): v for k, v in durations.items()}
    assert by_route[("POST", "/orders", "202")] >= 1
    assert any(route == "/orders/{order_id}" and method == "GET" for method, route, _ in by_route)
    assert by_route[("GET", "/healthz", "200")] >= 1
    assert not any(unknown in route for _, route, _ in by_route), "a raw path never becomes a label"
    assert _samples(scraped.text, "orderstream_commands_sent_total")[(("type", "PlaceOrder"),)] >= 1

    # the request's SERVER span continues the caller's trace; the command's send span is its child
    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.name == "POST /orders")
    assert len([s for s in spans if s.kind == trace.SpanKind.SERVER]) == 4, "one SERVER span per request (4 requests)"
    assert server.context.trace_id == caller_trace and server.parent.span_id == caller_span
    send = next(s for s in spans if s.name == "send orders.commands")
    assert send.parent.span_id == server.context.span_id
    # and the record on orders.commands carries the send span's context as ce_traceparent
    order_id = placed.json()["order_id"]
    records = read_topic(
        topics, ORDERS_COMMANDS, timeout_s=30, until=lambda cs: any(c.order_id == order_id for c in cs)
    )
    record = next(r for r, command in records if command.order_id == order_id)
    expected = f"00-{send.context.trace_id:032x}-{send.context.span_id:016x}-01".encode()
    assert dict(record.headers())["ce_traceparent"] == expected
