"""Orders: POST /orders, POST /orders/{id}/cancel|ship|deliver|return (commands), GET /orders/{id}, GET /orders
(queries).

Commands are built and checked by the domain's own validation (the CLI's), sent through the shared async sender,
and by default answered with the service's decision: 201/200 with the outcome (the fields of `place --wait --json`),
409 when refused, 412 when a cancel's If-Match version has moved, 404 for an unknown order. ?wait=false answers 202
as soon as the broker has the command. Idempotency-Key is the command id: a retry is the same command (its order id
and tracking number derive from the key too), which the service answers with its first reply again.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from orderstream.api.context import Context
from orderstream.api.problems import Problem, not_found
from orderstream.domain.commands import (
    CancelOrder,
    Command,
    DeliverOrder,
    PlaceOrder,
    ReturnItem,
    ReturnOrder,
    ShipOrder,
)
from orderstream.domain.events import OrderLine
from orderstream.domain.order import (
    validate_cancel_order,
    validate_deliver_order,
    validate_place_order,
    validate_return_order,
    validate_ship_order,
)
from orderstream.domain.validation import check_currency, check_version
from orderstream.producers.commands import Outcome
from orderstream.producers.outcomes import (
    CommandQueued,
    OrderCommandOutcome,
    ReturnItemOut,
    ReturnOutcome,
    ShipmentOutcome,
)
from orderstream.topology import ORDERS_COMMANDS
from orderstream.views.models import OrderDetail, OrderPage, OrderSummary, dump, orders_csv
from orderstream.views.order_view import NAME as ORDER_VIEW
from orderstream.views.order_view import (
    ORDER_SORTS,
    OrderCursor,
    OrderSelection,
    order_detail,
    page_orders,
    walk_orders,
)

router = APIRouter(tags=["orders"])

MAX_TIMEOUT_S = 60.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LineIn(_Body):
    sku: StrictStr
    quantity: StrictInt
    unit_price_minor: StrictInt


class PlaceOrderIn(_Body):
    customer_id: StrictStr
    currency: StrictStr = "EUR"
    lines: list[LineIn] = Field(max_length=1_000)
    order_id: StrictStr | None = None
    channel: StrictStr = "api"


class CancelIn(_Body):
    reason: StrictStr = ""


class ShipIn(_Body):
    carrier: StrictStr = "standard"
    tracking: StrictStr | None = None


class ReturnItemIn(_Body):
    sku: StrictStr
    quantity: StrictInt


class ReturnIn(_Body):
    items: list[ReturnItemIn] = Field(default_factory=list, max_length=1000)  # empty: everything not returned yet
    reason: StrictStr = ""
    restock: bool = True  # false: the units do not go back on hand (damaged goods)


IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", description="the command id: a retry with it changes nothing")
]
Wait = Annotated[bool, Query(description="wait for the service's decision (false: 202 once the broker has it)")]


def _derived(key: str, prefix: str) -> str:
    """An id derived from an Idempotency-Key, so a retried request builds the very same command."""
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:16]


def _command_id(key: str | None) -> str:
    return str(uuid.uuid4()) if key is None else key


async def _send(context, command: Command, topic: str, wait: bool) -> Outcome | None:
    sender = await context.commands.sender()
    if not wait:
        await sender.send(command, topic)
        return None
    return await sender.send_and_wait(command, topic)


def _answer(outcome: Outcome, body: dict[str, Any], accepted_status: int) -> JSONResponse:
    """The outcome as JSON; a refusal as a Problem carrying the same fields: 412 for a version conflict, 404 for an
    unknown order, 409 otherwise (the reply carries only the reason's text, which the deciders word this way)."""
    reply = outcome.reply
    if reply.accepted:
        return JSONResponse(body, status_code=accepted_status)
    reason = reply.reason or "refused"
    if reason.startswith("version conflict"):
        raise Problem(412, "Precondition Failed", reason, **body)
    if reason.endswith("does not exist"):
        raise Problem(404, "Not Found", reason, **body)
    raise Problem(409, "Conflict", reason, **body)


def _queued(order_id: str, command_id: str) -> JSONResponse:
    """?wait=false: 202 with the command id, once the broker has the command."""
    return JSONResponse(dump(CommandQueued(order_id=order_id, command_id=command_id)), status_code=202)


def _outcome_fields(outcome: Outcome, command: Command) -> dict[str, Any]:
    reply, token = outcome.reply, outcome.token
    return {
        "accepted": reply.accepted,
        "version": reply.version,
        "reason": reply.reason or None,
        "token": None if token is None else str(token),
        "command_id": command.command_id,
    }


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderCommandOutcome,
    responses={202: {"model": CommandQueued}, 409: {}, 422: {}},
    summary="Place an order",
)
async def place_order(
    context: Context, body: PlaceOrderIn, idempotency_key: IdempotencyKey = None, wait: Wait = True
) -> JSONResponse:
    command_id = _command_id(idempotency_key)
    if body.order_id is not None:
        order_id = body.order_id
    else:
        order_id = _derived(idempotency_key, "o-") if idempotency_key else f"o-{uuid.uuid4().hex[:16]}"
    currency = check_currency(body.currency.upper())
    command = PlaceOrder(
        command_id=command_id,
        issued_at=datetime.now(UTC),
        correlation_id=order_id,
        order_id=order_id,
        customer_id=body.customer_id,
        currency=currency,
        lines=tuple(OrderLine(sku=x.sku, quantity=x.quantity, unit_price_minor=x.unit_price_minor) for x in body.lines),
        channel=body.channel,
    )
    validate_place_order(command)
    outcome = await _send(context, command, ORDERS_COMMANDS, wait)
    if outcome is None:
        return _queued(order_id, command_id)
    answer = dump(OrderCommandOutcome(order_id=order_id, **_outcome_fields(outcome, command)))
    response = _answer(outcome, answer, 201)
    response.headers["Location"] = f"/orders/{order_id}"
    return response


def _expected_version(if_match: str | None) -> int | None:
    """If-Match: "<version>" (an ETag of GET /orders/{id}); "*" or none: any version."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/")
    if len(text) < 3 or not (text.startswith('"') and text.endswith('"')) or not text[1:-1].isascii():
        raise Problem(400, "Bad Request", 'If-Match must be a version in quotes, e.g. "3" (the ETag of the order)')
    digits = text[1:-1]
    if not digits.isdigit() or len(digits) > 19:
        raise Problem(400, "Bad Request", 'If-Match must be a version in quotes, e.g. "3" (the ETag of the order)')
    return check_version("expected version", int(digits))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderCommandOutcome,
    responses={202: {"model": CommandQueued}, 404: {}, 409: {}, 412: {}},
    summary="Cancel an order (If-Match: its version)",
)
async def cancel_order(
    context: Context,
    order_id: str,
    body: Annotated[CancelIn | None, Body()] = None,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = True,
) -> JSONResponse:
    command = CancelOrder(
        command_id=_command_id(idempotency_key),
        issued_at=datetime.now(UTC),
        correlation_id=order_id,
        order_id=order_id,
        reason=(body or CancelIn()).reason,
        expected_version=_expected_version(if_match),
    )
    validate_cancel_order(command)
    outcome = await _send(context, command, ORDERS_COMMANDS, wait)
    if outcome is None:
        return _queued(order_id, command.command_id)
    return _answer(outcome, dump(OrderCommandOutcome(order_id=order_id, **_outcome_fields(outcome, command))), 200)


@router.post(
    "/orders/{order_id}/ship",
    response_model=ShipmentOutcome,
    responses={202: {"model": CommandQueued}, 409: {}},
    summary="Dispatch a confirmed order's shipment",
)
async def ship_order(
    context: Context,
    order_id: str,
    body: Annotated[ShipIn | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = True,
) -> JSONResponse:
    body = body or ShipIn()
    if body.tracking is not None:
        tracking = body.tracking
    else:
        tracking = (_derived(idempotency_key, "TRK-") if idempotency_key else f"TRK-{uuid.uuid4().hex[:12]}").upper()
    # the order's single writer decides its dispatch (ShipOrder on orders.commands): a ship and a cancel never both win
    command = ShipOrder(
        command_id=_command_id(idempotency_key),
        issued_at=datetime.now(UTC),
        correlation_id=order_id,
        order_id=order_id,
        carrier=body.carrier,
        tracking_number=tracking,
    )
    validate_ship_order(command)
    outcome = await _send(context, command, ORDERS_COMMANDS, wait)
    if outcome is None:
        return _queued(order_id, command.command_id)
    fields = _outcome_fields(outcome, command) | {"carrier": command.carrier, "tracking_number": tracking}
    return _answer(outcome, dump(ShipmentOutcome(order_id=order_id, **fields)), 200)


@router.post(
    "/orders/{order_id}/deliver",
    response_model=ShipmentOutcome,
    responses={202: {"model": CommandQueued}, 409: {}},
    summary="Confirm a dispatched order's delivery",
)
async def deliver_order(
    context: Context, order_id: str, idempotency_key: IdempotencyKey = None, wait: Wait = True
) -> JSONResponse:
    command = DeliverOrder(
        command_id=_command_id(idempotency_key), issued_at=datetime.now(UTC), correlation_id=order_id, order_id=order_id
    )
    validate_deliver_order(command)
    outcome = await _send(context, command, ORDERS_COMMANDS, wait)
    if outcome is None:
        return _queued(order_id, command.command_id)
    return _answer(outcome, dump(ShipmentOutcome(order_id=order_id, **_outcome_fields(outcome, command))), 200)


@router.post(
    "/orders/{order_id}/return",
    response_model=ReturnOutcome,
    responses={202: {"model": CommandQueued}, 409: {}},
    summary="Take back a delivered order, whole or by line (refund, and restock unless told not to)",
)
async def return_order(
    context: Context,
    order_id: str,
    body: Annotated[ReturnIn | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = True,
) -> JSONResponse:
    body = body or ReturnIn()
    command = ReturnOrder(
        command_id=_command_id(idempotency_key),
        issued_at=datetime.now(UTC),
        correlation_id=order_id,
        order_id=order_id,
        items=tuple(ReturnItem(sku=item.sku, quantity=item.quantity) for item in body.items),
        reason=body.reason,
        restock=body.restock,
    )
    validate_return_order(command)
    outcome = await _send(context, command, ORDERS_COMMANDS, wait)
    if outcome is None:
        return _queued(order_id, command.command_id)
    items = [ReturnItemOut(sku=item.sku, quantity=item.quantity) for item in command.items]
    fields = _outcome_fields(outcome, command) | {"items": items, "restock": command.restock}
    return _answer(outcome, dump(ReturnOutcome(order_id=order_id, **fields)), 200)


# --- queries ------------------------------------------------------------------------------------------------------


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 time, UTC if it has no zone (z or Z for UTC, as the CLI)."""
    stripped = text.strip()
    if stripped[-1:] in ("Z", "z"):
        stripped = stripped[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise Problem(400, "Bad Request", f"{what} is not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def wait_for_token(context, projection: str, token_text: str | None, timeout: float | None) -> None:
    """?after=TOKEN or Consistency-Token: wait (asynchronously) until the view applied it; 503 past the timeout."""
    if token_text is None:
        return
    from orderstream.ops.read_your_writes import await_applied, parse_token
    from orderstream.views.store import NotInitialized

    token = parse_token(projection, token_text)
    try:
        model = context.views.get(projection)  # open already but for the first request (then a file stat)
    except NotInitialized:
        model = None  # the view has no database yet: the wait opens it once it exists
    await await_applied(
        context.settings, projection, token, timeout, model=model, watch=context.views.watch(projection)
    )


async def _view(context, projection: str):
    return await asyncio.to_thread(context.views.get, projection)


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


@router.get(
    "/orders/{order_id}",
    response_model=OrderDetail,
    response_model_exclude_unset=True,
    responses={304: {}, 404: {}, 503: {}},
    summary="One order: summary, lines, timeline (ETag = its version)",
)
async def get_order(
    context: Context,
    order_id: str,
    after: Annotated[str | None, Query(max_length=300, description="a read-your-writes token to wait for")] = None,
    consistency_token: Annotated[str | None, Header(alias="Consistency-Token", max_length=300)] = None,
    timeout: Annotated[float | None, Query(ge=0, le=MAX_TIMEOUT_S, description="seconds to wait for the token")] = None,
    as_of: Annotated[str | None, Query(max_length=64, description="the order as it was at this ISO time")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    moment = parse_time(as_of, "as_of") if as_of is not None else None
    await wait_for_token(context, ORDER_VIEW, after if after is not None else consistency_token, timeout)
    if moment is None:
        detail = await context.views.point_read(ORDER_VIEW, order_detail, order_id)
    else:
        from orderstream.views.order_view import order_as_of

        detail = await context.views.point_read(ORDER_VIEW, order_as_of, order_id, moment)
    if detail is None:
        raise not_found(f"order {_short(order_id)} not found in order-view" + (f" as of {as_of}" if moment else ""))
    etag = f'"{detail["version"]}"'
    if if_none_match is not None and etag in {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    # the bytes JSONResponse(dump(...)) would write, serialised by pydantic-core in one step instead of via a dict
    body = OrderDetail.model_validate(detail).model_dump_json(exclude_unset=True)
    return Response(body, media_type="application/json", headers={"ETag": etag})


def _selection(customer: str | None, status: str | None, since: str | None, sort: str, asc: bool) -> OrderSelection:
    from orderstream.views.base import STATUSES, utc_text

    if status is not None and status.upper() not in STATUSES:
        raise Problem(400, "Bad Request", f"unknown status; choose from: {', '.join(STATUSES)}")
    moment = utc_text(parse_time(since, "since")) if since is not None else None
    return OrderSelection(customer, None if status is None else status.upper(), moment, sort, not asc)


@router.get(
    "/orders",
    response_model=OrderPage,
    responses={200: {"content": {"text/csv": {}}}},
    summary="Order summaries: filtered, sorted, paged by cursor (Accept: text/csv: the whole selection)",
)
async def list_orders(
    request: Request,
    context: Context,
    customer: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[str | None, Query(max_length=64, description="placed at or after this ISO time")] = None,
    sort: Annotated[str, Query(description=f"one of {', '.join(ORDER_SORTS)}")] = "placed_at",
    asc: Annotated[bool, Query(description="oldest/smallest first (default: newest first)")] = False,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 50,
    cursor: Annotated[str | None, Query(max_length=4_096, description="the `next` of the previous page")] = None,
) -> Response:
    after = OrderCursor.decode(cursor) if cursor is not None else None
    if after is not None and not any(p in request.query_params for p in ("customer", "status", "since", "sort", "asc")):
        selection = after.selection  # the cursor carries its selection: ?cursor= alone goes on with it
    else:
        selection = _selection(customer, status, since, sort, asc)
    model = await _view(context, ORDER_VIEW)
    if "text/csv" in request.headers.get("accept", ""):
        return StreamingResponse(
            orders_csv(walk_orders(model, selection)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
        )
    rows, next_cursor = await context.views.read(ORDER_VIEW, page_orders, selection, limit, after)
    page = OrderPage(items=[OrderSummary.model_validate(r) for r in rows], next=next_cursor and next_cursor.encode())
    headers = {}
    if page.next is not None:
        headers["Link"] = f'<{request.url.path}?cursor={page.next}&limit={limit}>; rel="next"'
    return JSONResponse(dump(page), headers=headers)
