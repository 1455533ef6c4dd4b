"""The app factory: create_app(settings) -> FastAPI, one router per resource, the context built in the lifespan.

Shape (kept stable for the routers that plug in, e.g. the web console):
- the lifespan builds one ApiContext (settings, read models, command sender) and hands it to every request as
  lifespan state (`request.state.context`, dependency `context.Context`); nothing lives in a module global;
- ROUTERS lists the resource routers; extra_routers (create_app's argument) are included after them, so the web
  console is `create_app(settings, extra_routers=[console.router])` or added to ROUTERS' list here;
- middleware, outermost first: request metrics and spans (orderstream.telemetry.http, which also serves GET
  /metrics), CORS (when api_cors_origins is set: it answers a browser's preflight, which carries no token), the
  bearer token (when api_token is set), and the request body limit (api_max_body_bytes,
  security.BodyLimitMiddleware: a 413 Problem).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from orderstream.api import console, problems
from orderstream.api.context import ApiContext, Commands, LiveEvents, ReadModels
from orderstream.api.routers import events, ops, orders, sales, stock
from orderstream.api.security import BearerTokenMiddleware, BodyLimitMiddleware
from orderstream.config import Settings
from orderstream.telemetry import http as telemetry
from orderstream.topology import INVENTORY_REPLIES, ORDERS_REPLIES, SHIPPING_REPLIES

ROUTERS: tuple[APIRouter, ...] = (orders.router, events.router, stock.router, sales.router, ops.router, console.router)


def create_app(settings: Settings, extra_routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The HTTP API for these settings. Nothing connects before the server starts: the lifespan opens what the
    requests share, and a view or the broker that is not there yet is reported per request (503), not at start."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, ApiContext]]:
        context = ApiContext(
            settings=settings,
            views=ReadModels(settings),
            commands=Commands(settings, (ORDERS_REPLIES, INVENTORY_REPLIES, SHIPPING_REPLIES)),
            live=LiveEvents(settings),
        )
        try:
            yield {"context": context}
        finally:
            await context.commands.close()
            await context.live.close()
            context.views.close()

    app = FastAPI(
        title="orderstream",
        summary="Orders, stock and sales of the orderstream pipeline: commands, read models, live order events.",
        version="1",
        lifespan=lifespan,
        **_without_native_telemetry(),
    )
    problems.install(app)
    for router in (*ROUTERS, *extra_routers):
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    if settings.api_token is not None:
        app.add_middleware(BearerTokenMiddleware, token=settings.api_token, public=console.public_request)
    if settings.api_cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api_cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key",
                           "Consistency-Token", "Last-Event-ID"],
            expose_headers=["ETag", "Link", "Retry-After", "Location"],
        )  # fmt: skip
    telemetry.install(app, settings)  # outermost: request time by route and status, GET /metrics
    return app


def _without_native_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry instrumentation (FastAPI 0.16x's `telemetry`) off: the request metrics and server
    spans are orderstream.telemetry.http's, and with tracing on FastAPI's would be a second server span per request
    (and spans for its dependency resolution). It also asked OpenTelemetry for the global meter provider on every
    request, reading os.environ each time: 2.5% of GET /orders/{id}'s time under wrk. Older FastAPIs have none."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
