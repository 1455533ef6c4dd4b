"""The outcome of a command as the CLI's --json prints it and the HTTP API returns it: one pydantic model per
command family, so the two cannot drift. Stable fields (DESIGN.md): order_id, accepted, version, reason, token."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Outcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderCommandOutcome(_Outcome):
    """place, cancel: accepted (None: no reply in time), the order's version, the refusal's reason, the
    read-your-writes token of the last event written."""

    order_id: str
    accepted: bool | None
    version: int | None
    reason: str | None
    token: str | None
    command_id: str


class ShipmentOutcome(OrderCommandOutcome):
    """ship, deliver (ship also names the carrier and tracking number)."""

    carrier: str | None = None
    tracking_number: str | None = None


class ReturnItemOut(_Outcome):
    sku: str
    quantity: int


class ReturnOutcome(OrderCommandOutcome):
    """return: also the items asked back (empty: everything not returned yet) and whether they go back on hand."""

    items: list[ReturnItemOut] = []
    restock: bool = True


class RestockOutcome(_Outcome):
    """stock add, POST /stock/{sku}/restock."""

    sku: str
    quantity: int
    accepted: bool | None
    version: int | None
    reason: str | None
    token: str | None
    command_id: str


class CommandQueued(_Outcome):
    """A command the broker has, not yet decided (HTTP ?wait=false: 202)."""

    order_id: str | None = None
    sku: str | None = None
    command_id: str
