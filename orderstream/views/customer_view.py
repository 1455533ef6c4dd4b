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
from orderstream.views.base import CLOSED_STATUSES, RowChanges, StateRows, fold_order_states

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
    for order_id, before, after in fold_order_states(events, current, _placed):
        changes.upsert("orders", (order_id,), after)
        (count_before, value_before), (count_after, value_after) = contribution(before), contribution(after)
        changes.increment(
            "customers",
            (after["customer_id"], after["currency"]),
            {"orders_count": count_after - count_before, "lifetime_value_minor": value_after - value_before},
        )
    return changes.without_zero_increments()


def _placed(event: OrderPlaced) -> dict[str, Any]:
    return {"customer_id": event.customer_id, "currency": event.currency, "total_minor": event.total_minor}
