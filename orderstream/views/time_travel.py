"""Time travel on the order view: an order as it was at a moment, folded from its timeline (never by reading Kafka).

"As it was at T" means the fold of the order's events whose occurred_at is at or before T (event time, the time the
order service decided them). The order view keeps, per order, its lines (fixed when it is placed) and a timeline row
per event holding everything the summary's fold needs: type, version, occurred_at and - since order-view schema
version 2 - the payment status an OrderPaymentUpdated set. fold_timeline() is pure; order_as_of() reads one order
through the ReadModel in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from orderstream.domain.events import ORDER_EVENTS
from orderstream.views.base import STATUS_AFTER, utc_text
from orderstream.views.queries import ReadModel

# The order status each status-changing event type leads to, by the type name the timeline stores.
_STATUS_BY_TYPE = {kind.__name__: status for kind, status in STATUS_AFTER.items()}
_PLACED = "OrderPlaced"
_PAYMENT_UPDATED = "OrderPaymentUpdated"
assert {kind.__name__ for kind in ORDER_EVENTS} >= set(_STATUS_BY_TYPE) | {_PLACED, _PAYMENT_UPDATED}


def fold_timeline(
    placed: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], timeline: Sequence[Mapping[str, Any]], as_of: str
) -> dict[str, Any] | None:
    """The order's detail (query order's fields) as of `as_of` (RFC 3339 UTC text, base.utc_text), or None when it
    was not placed yet. `placed` holds the immutable facts of the order (order_id, customer_id, currency,
    total_minor); `timeline` its rows in version order."""
    seen = [entry for entry in timeline if entry["occurred_at"] <= as_of]
    if not seen or seen[0]["type"] != _PLACED:
        return None
    status, payment_status = "PLACED", None
    for entry in seen:
        status = _STATUS_BY_TYPE.get(entry["type"], status)
        if entry["type"] == _PAYMENT_UPDATED:
            payment_status = entry["payment_status"]
    return {
        "order_id": placed["order_id"],
        "customer_id": placed["customer_id"],
        "status": status,
        "version": seen[-1]["version"],
        "currency": placed["currency"],
        "total_minor": placed["total_minor"],
        "payment_status": payment_status,
        "placed_at": seen[0]["occurred_at"],
        "updated_at": seen[-1]["occurred_at"],
        "as_of": as_of,
        "lines": [dict(line) for line in lines],
        "timeline": [
            {"type": e["type"], "version": e["version"], "occurred_at": e["occurred_at"], "event_id": e["event_id"]}
            for e in seen
        ],
    }


def order_as_of(model: ReadModel, order_id: str, moment: datetime) -> dict[str, Any] | None:
    """One order as it was at `moment` (see the module docstring); None if the view has no such order or it was
    placed after `moment`. Reads the live generation of order-view in one transaction."""
    with model.reading() as (conn, t):
        orders, lines, timeline = t["orders"], t["lines"], t["timeline"]
        row = conn.execute(
            select(orders.c.order_id, orders.c.customer_id, orders.c.currency, orders.c.total_minor).where(
                orders.c.order_id == order_id
            )
        ).one_or_none()
        if row is None:
            return None
        line_rows = conn.execute(
            select(lines.c.sku, lines.c.quantity, lines.c.unit_price_minor)
            .where(lines.c.order_id == order_id)
            .order_by(lines.c.line_no)
        )
        entries = conn.execute(
            select(timeline.c.type, timeline.c.version, timeline.c.occurred_at, timeline.c.event_id,
                   timeline.c.payment_status)
            .where(timeline.c.order_id == order_id)
            .order_by(timeline.c.version)
        )  # fmt: skip
        return fold_timeline(
            row._mapping, [r._mapping for r in line_rows], [e._mapping for e in entries], utc_text(moment)
        )
