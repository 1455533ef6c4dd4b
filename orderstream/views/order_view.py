"""order-view: one row per order (its current summary), its lines, and the full timeline of its events.

State row (table role "orders"): order_id, customer_id, status, currency, total_minor, version, payment_status,
placed_at, updated_at. Status follows the status-changing events (base.STATUS_AFTER); OrderPaymentUpdated sets
payment_status (None until the first one); OrderLineReservationUpdated only adds a timeline entry. Every event,
whatever its type, appends one timeline row (order_id, version, type, occurred_at, event_id, payment_status) and
bumps version and updated_at. The timeline row carries the payment status an OrderPaymentUpdated set (None for other
events), so the timeline alone holds everything the summary's fold needs: `query order --as-of` (time_travel.py)
folds it up to a moment.

Schema versions: 1 = timeline without payment_status; 2 = with it (rebuild with `replay projection order-view`).
"""

from __future__ import annotations

from collections.abc import Sequence

from orderstream.domain.events import Event, OrderPaymentUpdated, OrderPlaced
from orderstream.views.base import STATUS_AFTER, RowChanges, StateRows, check_next, utc_text

NAME = "order-view"
SCHEMA_VERSION = 2
STATE_ROLE = "orders"


def project(events: Sequence[Event], current: StateRows) -> RowChanges:
    """Fold a batch into row changes: each touched order's final row, its lines when placed, one timeline row per event.

    Runs once per event of every rebuild, so it works on private copies of the state rows (made once per batch)
    and updates them in place."""
    changes = RowChanges()
    lines = changes.upserts.setdefault("lines", {})
    timeline = changes.upserts.setdefault("timeline", {})
    orders = {order_id: dict(row) for order_id, row in current.items()}
    touched: dict[str, dict] = {}
    for event in events:
        order_id = event.order_id  # type: ignore[attr-defined]
        row = orders.get(order_id)
        check_next(event, row)
        at = utc_text(event.occurred_at)
        version = event.version
        payment_status = None
        if event.__class__ is OrderPlaced:
            row = orders[order_id] = {
                "order_id": order_id,
                "customer_id": event.customer_id,
                "status": "PLACED",
                "currency": event.currency,
                "total_minor": event.total_minor,
                "version": version,
                "payment_status": None,
                "placed_at": at,
                "updated_at": at,
            }
            for line_no, line in enumerate(event.lines):
                lines[(order_id, line_no)] = {
                    "order_id": order_id,
                    "line_no": line_no,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "unit_price_minor": line.unit_price_minor,
                }
        else:
            row["version"] = version  # type: ignore[index]  # check_next guarantees the row
            row["updated_at"] = at  # type: ignore[index]
            status = STATUS_AFTER.get(event.__class__)
            if status is not None:
                row["status"] = status  # type: ignore[index]
            if event.__class__ is OrderPaymentUpdated:
                payment_status = row["payment_status"] = event.payment_status.value  # type: ignore[index]
        touched[order_id] = row  # type: ignore[assignment]
        timeline[(order_id, version)] = {
            "order_id": order_id,
            "version": version,
            "type": event.type_name,
            "occurred_at": at,
            "event_id": event.event_id,
            "payment_status": payment_status,
        }
    changes.upserts["orders"] = {(order_id,): row for order_id, row in touched.items()}
    return changes
