"""sales-view: units and revenue per SKU per day (and currency), and the number of orders in each status.

How cancelled and rejected orders count (the rule this view implements):
- Units and revenue are *booked* sales: an order counts once it is CONFIRMED, and keeps counting while SHIPPED and
  DELIVERED. A PLACED order (not yet confirmed) does not count; a REJECTED order never counts; an order CANCELLED
  after confirmation stops counting (its units and revenue are taken back out). So a day's figures only ever show
  orders that are confirmed or later right now.
- The day is the UTC day of the order's OrderPlaced occurred_at (not the day it was confirmed), so late confirmations
  land on the day the customer ordered.
- Revenue is per currency, in minor units: quantity * unit_price_minor summed over the order's lines of that SKU.
- Status counts: every order counts once, under its current status (PLACED, CONFIRMED, ..., CANCELLED).

State row (role "orders"): order_id, day, currency, status, version, lines (JSON text of [sku, quantity,
unit_price_minor] triples) - what this view must remember to book or unbook an order when its status changes.
Aggregates are increments: delta = contribution after the batch - contribution before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from orderstream.domain.events import Event, OrderPlaced
from orderstream.views.base import Key, RowChanges, StateRows, fold_order_states, utc_day

NAME = "sales-view"
SCHEMA_VERSION = 1
STATE_ROLE = "orders"
BOOKED_STATUSES = frozenset({"CONFIRMED", "SHIPPED", "DELIVERED"})


def booked(state: Mapping[str, Any] | None) -> dict[Key, tuple[int, int]]:
    """(day, sku, currency) -> (units, revenue_minor) one order contributes to the daily sales."""
    if state is None or state["status"] not in BOOKED_STATUSES:
        return {}
    totals: dict[Key, tuple[int, int]] = {}
    for sku, quantity, unit_price_minor in json.loads(state["lines"]):
        key = (state["day"], sku, state["currency"])
        units, revenue = totals.get(key, (0, 0))
        totals[key] = (units + quantity, revenue + quantity * unit_price_minor)
    return totals


def project(events: Sequence[Event], current: StateRows) -> RowChanges:
    changes = RowChanges()
    for order_id, before, after in fold_order_states(events, current, _placed):
        changes.upsert("orders", (order_id,), after)
        if before is not None:
            changes.increment("statuses", (before["status"],), {"orders": -1})
        changes.increment("statuses", (after["status"],), {"orders": 1})
        old, new = booked(before), booked(after)
        for key in old.keys() | new.keys():
            units_old, revenue_old = old.get(key, (0, 0))
            units_new, revenue_new = new.get(key, (0, 0))
            changes.increment(
                "daily", key, {"units": units_new - units_old, "revenue_minor": revenue_new - revenue_old}
            )
    return changes.without_zero_increments()


def _placed(event: OrderPlaced) -> dict[str, Any]:
    return {
        "day": utc_day(event.occurred_at),
        "currency": event.currency,
        "lines": json.dumps([[line.sku, line.quantity, line.unit_price_minor] for line in event.lines]),
    }
