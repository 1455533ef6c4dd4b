"""Stock: GET /stock, GET /stock/{sku} (the stock view; ?after=TOKEN waits for a restock's token) and
POST /stock/{sku}/restock (the inventory service's RestockSku)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictInt

from orderstream.api.context import Context
from orderstream.api.problems import Problem, not_found
from orderstream.api.routers.orders import MAX_TIMEOUT_S, wait_for_token
from orderstream.domain.commands import RestockSku
from orderstream.domain.validation import check_id, check_stock_quantity
from orderstream.producers.outcomes import CommandQueued, RestockOutcome
from orderstream.topology import INVENTORY_COMMANDS
from orderstream.views.models import StockLevel, dump
from orderstream.views.stock_view import NAME as STOCK_VIEW
from orderstream.views.stock_view import stock_levels

router = APIRouter(tags=["stock"])


class RestockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    quantity: StrictInt


After = Annotated[str | None, Query(max_length=300, description="a read-your-writes token to wait for")]
Timeout = Annotated[float | None, Query(ge=0, le=MAX_TIMEOUT_S)]


@router.get("/stock", response_model=list[StockLevel], summary="On hand, reserved and available units per SKU")
async def all_stock(context: Context, after: After = None, timeout: Timeout = None) -> list[dict]:
    await wait_for_token(context, STOCK_VIEW, after, timeout)
    rows = await context.views.read(STOCK_VIEW, stock_levels)
    return [dump(StockLevel.model_validate(r)) for r in rows]


@router.get("/stock/{sku}", response_model=StockLevel, responses={404: {}}, summary="One SKU's stock")
async def one_sku(context: Context, sku: str, after: After = None, timeout: Timeout = None) -> dict:
    await wait_for_token(context, STOCK_VIEW, after, timeout)
    rows = await context.views.read(STOCK_VIEW, stock_levels, sku)
    if not rows:
        raise not_found(f"sku {sku[:80]!r} not found in stock-view")
    return dump(StockLevel.model_validate(rows[0]))


@router.post(
    "/stock/{sku}/restock",
    response_model=RestockOutcome,
    responses={202: {"model": CommandQueued}, 409: {}, 422: {}},
    summary="Add units of a SKU to stock",
)
async def restock(
    context: Context,
    sku: str,
    body: RestockIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    wait: bool = True,
) -> JSONResponse:
    check_id("sku", sku)
    units = check_stock_quantity(sku, body.quantity)
    command_id = str(uuid.uuid4()) if idempotency_key is None else check_id("command id", idempotency_key)
    command = RestockSku(
        command_id=command_id, issued_at=datetime.now(UTC), correlation_id=command_id, sku=sku, quantity=units
    )
    sender = await context.commands.sender()
    if not wait:
        await sender.send(command, INVENTORY_COMMANDS)
        return JSONResponse(dump(CommandQueued(sku=sku, command_id=command_id)), status_code=202)
    outcome = await sender.send_and_wait(command, INVENTORY_COMMANDS)
    reply, token = outcome.reply, outcome.token
    body_out = dump(
        RestockOutcome(
            sku=sku,
            quantity=units,
            accepted=reply.accepted,
            version=reply.version,
            reason=reply.reason or None,
            token=None if token is None else str(token),
            command_id=command_id,
        )
    )
    if not reply.accepted:
        raise Problem(409, "Conflict", reply.reason or "refused", **body_out)
    return JSONResponse(body_out)
