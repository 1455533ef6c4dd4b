"""GET /orders/{id}/events: the order's events as Server-Sent Events, history first, then live (see api/live.py).

Each message: `id` = the event's log position (a read-your-writes token), `event` = its type, `data` = the event
as JSON. Last-Event-ID (header, or ?last_event_id= for clients that cannot set it) resumes right after that
position. A comment line every KEEPALIVE_S keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from orderstream.api.context import Context
from orderstream.api.live import LogRecord, TailUnavailable, history_start, read_history
from orderstream.api.problems import Problem
from orderstream.kafka.consistency import ConsistencyToken, TokenError
from orderstream.ops.tail import jsonable
from orderstream.topology import ORDERS_EVENTS
from orderstream.views import order_view
from orderstream.views.order_view import order_detail
from orderstream.views.store import StoreError

router = APIRouter(tags=["orders"])
log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0


def _resume_point(text: str, partition: int) -> int:
    """The offset after a Last-Event-ID, which must be a position on the order's partition of orders.events."""
    try:
        token = ConsistencyToken.parse(text)
    except TokenError:
        token = None
    if token is None or token.topic != ORDERS_EVENTS or token.partition != partition:
        raise Problem(
            400, "Bad Request", "Last-Event-ID must be the id of an event of this order's stream (orders.events:P:O)"
        )
    return token.offset + 1


def _message(record: LogRecord, codec) -> str | None:
    from orderstream.schemas.errors import DecodeError

    position = str(ConsistencyToken(ORDERS_EVENTS, record.partition, record.offset))
    try:
        event = codec.decode(record.value)
    except DecodeError as exc:  # the order view's projector dead-letters it; the stream says so and goes on
        log.warning("undecodable record at %s: %s", position, exc)
        return f"id: {position}\nevent: undecodable\ndata: {json.dumps({'error': str(exc)})}\n\n"
    body = {"type": type(event).__name__, **jsonable(event)}
    return f"id: {position}\nevent: {type(event).__name__}\ndata: {json.dumps(body, default=str)}\n\n"


@router.get(
    "/orders/{order_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    summary="The order's events as Server-Sent Events: history, then live (Last-Event-ID resumes)",
)
async def order_events(
    request: Request,
    context: Context,
    order_id: str,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=300)] = None,
    resume: Annotated[str | None, Query(alias="last_event_id", max_length=300)] = None,
) -> StreamingResponse:
    from orderstream.schemas.wire import codec_for

    try:
        tail = await context.live.tail()
    except TailUnavailable as exc:
        raise Problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "1"}) from None
    key = order_id.encode("utf-8")
    partition = tail.partition_of(key)
    resume_text = last_event_id if last_event_id is not None else resume
    if resume_text is not None:
        start = _resume_point(resume_text, partition)
    else:
        try:
            detail = await context.views.read(order_view.NAME, order_detail, order_id)
        except StoreError:
            detail = None  # no view to ask: read the partition from its start
        start = await asyncio.to_thread(
            history_start, context.settings, partition, detail["placed_at"] if detail else None
        )
    queue: asyncio.Queue = asyncio.Queue()
    until = tail.subscribe(key, queue)
    try:
        history = await asyncio.to_thread(read_history, context.settings, key, partition, start, until)
    except BaseException:
        tail.unsubscribe(key, queue)
        raise
    codec = codec_for(context.settings)  # both wire formats in registry mode

    async def stream() -> AsyncIterator[str]:
        sent = start - 1
        try:
            for record in history:
                message = _message(record, codec)
                sent = record.offset
                if message:
                    yield message
            while not await request.is_disconnected():
                try:
                    record = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if record is None:  # the tail failed: end the stream, the client reconnects with Last-Event-ID
                    return
                if record.offset <= sent:
                    continue
                sent = record.offset
                message = _message(record, codec)
                if message:
                    yield message
        finally:
            tail.unsubscribe(key, queue)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
