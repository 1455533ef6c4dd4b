"""HTTP: request time by route and status (a pure ASGI middleware), a server span per request when tracing, and the
GET /metrics endpoint. install(app, settings) puts both on an ASGI app with FastAPI/Starlette's API.

The route label is the matched route's template (/orders/{order_id}), never the raw path, so an order id never
becomes a label; a request no route matched is counted under "<unmatched>". A streaming response (text/event-stream)
is timed until its stream ends.
"""

from __future__ import annotations

import time
from typing import Any

from orderstream.config import Settings
from orderstream.telemetry import metrics, propagation, tracing

UNMATCHED = "<unmatched>"


class HttpTelemetry:
    """ASGI middleware: observes orderstream_http_request_duration_seconds{method, route, status}; with tracing on,
    runs each request in a SERVER span whose parent is the request's `traceparent` header (W3C), so a command the
    request sends carries the caller's trace."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        tracing.configure(settings, "api")
        self.tracer = tracing.tracer("http")  # None: tracing off

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = [500]  # an exception before the response starts is answered 500 by the server

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        span = self._start_span(scope) if self.tracer is not None else None
        try:
            if span is None:
                await self.app(scope, receive, sending)
            else:
                from opentelemetry import trace

                with trace.use_span(span, end_on_exit=False, record_exception=True):
                    await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope.get("method", "GET")
            metrics.http_request_duration.labels(method, route, str(status[0])).observe(time.perf_counter() - began)
            if span is not None:
                self._end_span(span, method, route, status[0])

    def _start_span(self, scope: dict) -> Any:
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        headers = [(name.decode("latin-1"), value) for name, value in scope.get("headers", ())]
        remote = propagation.extract(headers)
        parent = (
            trace.set_span_in_context(trace.NonRecordingSpan(remote)) if remote is not None else otel_context.Context()
        )
        return self.tracer.start_span(
            scope.get("method", "GET"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope.get("method", "GET"), "url.path": scope.get("path", "")},
        )

    @staticmethod
    def _end_span(span: Any, method: str, route: str, status: int) -> None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", str(status))
        span.end()


def install(app: Any, settings: Settings) -> None:
    """Time every request (the middleware, added outermost so refused and failed requests count too) and serve
    GET /metrics: this process's metrics, or the whole process tree's under `orderstream run all`."""
    from starlette.requests import Request
    from starlette.responses import Response

    from orderstream.telemetry.exposition import exposition

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = exposition(request.headers.get("accept"))
        return Response(body, media_type=None, headers={"Content-Type": content_type})

    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(HttpTelemetry, settings=settings)
