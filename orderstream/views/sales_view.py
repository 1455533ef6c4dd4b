"""sales-view: units and revenue per SKU per day (and currency), and the number of orders in each status.

How orders count (the rule this view implements):
- Units and revenue are *captured* sales less refunds: an order counts once its dispatch is accepted (SHIPPED; the
  payment is captured then), and keeps counting while DELIVERED. A return takes the returned units and their amount
  (what is refunded) back out, so a PARTIALLY_RETURNED order counts what was kept and a RETURNED one nothing. PLACED
  and CONFIRMED orders (authorized, not captured) do not count; REJECTED and CANCELLED ones never do (a cancel can only
  come before the dispatch). So revenue = captured - refunded.
- The day is the UTC day of the order's OrderPlaced occurred_at (not the day it was confirmed), so late confirmations
  land on the day the customer ordered.
- Revenue is per currency, in minor units: quantity * unit_price_minor summed over the order's lines of that SKU.
- Status counts: every order counts once, under its current status (PLACED, CONFIRMED, ..., CANCELLED).

State row (role "orders"): order_id, day, currency, status, version, lines (JSON text of [sku, quantity kept,
unit_price_minor] triples: the ordered quantity less what was returned) - what this view must remember to book or
unbook an order when its status changes. Schema versions: 1 = booked from CONFIRMED; 2 = captured less refunded, and
statuses up to 32 characters (rebuild with `replay projection sales-view`).
Aggregates are increments: delta = contribution after the batch - contribution before.

Replay from a time T: orders placed from T on are refolded, so the daily units and revenue of the days from T on (an
order books on the day it was placed) are recomputed entirely from the log; earlier days are recomputed
(replay_totals) from the copied order rows; status counts from both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, func, select

from orderstream.domain.events import Event, OrderPlaced, OrderReturned
from orderstream.topology import ORDERS_EVENTS
from orderstream.views.base import (
    Key,
    QueryError,
    Row,
    RowChanges,
    StateRows,
    fold_order_states,
    kept_lines,
    utc_day,
)
from orderstream.views.spec import ProjectionSpec, ReplayScope, ViewReader
from orderstream.views.tables import TableSet

NAME = "sales-view"
SCHEMA_VERSION = 2
STATE_ROLE = "orders"
BOOKED_STATUSES = frozenset({"SHIPPED", "DELIVERED", "PARTIALLY_RETURNED", "RETURNED"})


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
    for order_id, before, after in fold_order_states(events, current, _placed, _returned):
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


def _returned(row: Row, event: OrderReturned) -> Row:
    return {**row, "lines": json.dumps(kept_lines(json.loads(row["lines"]), event))}


def replay_totals(rows: Iterable[Mapping[str, Any]]) -> RowChanges:
    """The daily sales and status counts of copied state rows (a replay from a time recomputes them, never copies
    them)."""
    changes = RowChanges()
    for row in rows:
        changes.increment("statuses", (row["status"],), {"orders": 1})
        for key, (units, revenue) in booked(row).items():
            changes.increment("daily", key, {"units": units, "revenue_minor": revenue})
    return changes


def tables(generation: int) -> TableSet:
    g = f"g{generation}"
    metadata = MetaData()
    orders = Table(
        f"sales_view_orders_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("day", String(10), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("status", String(32), nullable=False),
        Column("version", Integer, nullable=False),
        Column("lines", Text, nullable=False),
    )
    daily = Table(
        f"sales_view_daily_{g}",
        metadata,
        Column("day", String(10), primary_key=True),
        Column("sku", String, primary_key=True),
        Column("currency", String(3), primary_key=True),
        Column("units", BigInteger, nullable=False),
        Column("revenue_minor", BigInteger, nullable=False),
    )
    statuses = Table(
        f"sales_view_statuses_{g}",
        metadata,
        Column("status", String(32), primary_key=True),
        Column("orders", BigInteger, nullable=False),
    )
    return {"orders": orders, "daily": daily, "statuses": statuses}


# --- queries ---


def sales(model: ViewReader, *, by: str = "sku") -> list[dict[str, Any]]:
    """Booked units and revenue (see sales_view) per SKU or per day, per currency; rows with no sales left out."""
    groupings = {"sku": ("sku",), "day": ("day",), "day-sku": ("day", "sku")}
    if by not in groupings:
        raise QueryError(f"cannot group sales by {by!r}; choose from: {', '.join(groupings)}")
    with model.reading() as (conn, t):
        daily = t["daily"]
        keys = [daily.c[name] for name in groupings[by]] + [daily.c.currency]
        units, revenue = func.sum(daily.c.units), func.sum(daily.c.revenue_minor)
        query = (
            select(*keys, units.label("units"), revenue.label("revenue_minor"))
            .group_by(*keys)
            .having(units != 0)
            .order_by(*keys)
        )
        return [
            {**dict(row._mapping), "units": int(row.units), "revenue_minor": int(row.revenue_minor)}
            for row in conn.execute(query)
        ]


def status_counts(model: ViewReader) -> list[dict[str, Any]]:
    """How many orders are in each status right now (statuses with none left out)."""
    with model.reading() as (conn, t):
        statuses = t["statuses"]
        query = select(statuses.c.status, statuses.c.orders).where(statuses.c.orders != 0).order_by(statuses.c.status)
        return [dict(row._mapping) for row in conn.execute(query)]


SPEC = ProjectionSpec(
    name=NAME,
    schema_version=SCHEMA_VERSION,
    topics=(ORDERS_EVENTS,),
    state_role=STATE_ROLE,
    tables=tables,
    project=project,
    replay_scope=ReplayScope({"orders": "order_id"}, replay_totals),
)
