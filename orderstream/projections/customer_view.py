"""customer-view: per customer and currency, how many orders they placed and their lifetime value.

Definitions:
- orders_count: every order the customer placed, whatever became of it.
- lifetime_value_minor: the sum of total_minor of the customer's orders that are not REJECTED or CANCELLED, per
  currency (money of different currencies is never added up). An order counts from the moment it is placed; it stops
  counting when it is rejected or cancelled.

State row (role "orders"): order_id, customer_id, currency, total_minor, status, version - what this view must remember
about an order to adjust the aggregates when a later event (which carries only the order id) changes its status.
Aggregates (role "customers") are written as increments: delta = contribution after the batch - contribution before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orderstream.domain.events import Event, OrderPlaced
from orderstream.projections.base import CLOSED_STATUSES, STATUS_AFTER, RowChanges, StateRows, check_next

NAME = "customer-view"
SCHEMA_VERSION = 1
STATE_ROLE = "orders"


def contribution(state: Mapping[str, Any] | None) -> tuple[int, int]:
    """(orders_count, lifetime_value_minor) one order adds to its customer's row."""
    if state is None:
        return 0, 0
    return 1, 0 if state["status"] in CLOSED_STATUSES else state["total_minor"]


def project(events: Sequence[Event], current: StateRows) -> RowChanges:
    changes = RowChanges()
    orders = {order_id: dict(row) for order_id, row in current.items()}
    touched: dict[str, None] = {}
    for event in events:
        order_id = event.order_id  # type: ignore[attr-defined]
        row = orders.get(order_id)
        check_next(event, row)
        if isinstance(event, OrderPlaced):
            row = {
                "order_id": order_id,
                "customer_id": event.customer_id,
                "currency": event.currency,
                "total_minor": event.total_minor,
                "status": "PLACED",
                "version": event.version,
            }
        else:
            row = {**row, "version": event.version, "status": STATUS_AFTER.get(type(event), row["status"])}  # type: ignore[dict-item]
        orders[order_id] = row
        touched[order_id] = None
    for order_id in touched:
        before, after = current.get(order_id), orders[order_id]
        changes.upsert("orders", (order_id,), after)
        (count_before, value_before), (count_after, value_after) = contribution(before), contribution(after)
        changes.increment(
            "customers",
            (after["customer_id"], after["currency"]),
            {"orders_count": count_after - count_before, "lifetime_value_minor": value_after - value_before},
        )
    return changes.without_zero_increments()
