"""customer-view: per customer and currency, how many orders they placed and their lifetime value.

Definitions:
- orders_count: every order the customer placed, whatever became of it.
- lifetime_value_minor: the sum of total_minor of the customer's orders that are not REJECTED or CANCELLED, less
  what returns refunded, per currency (money of different currencies is never added up). An order counts from the
  moment it is placed; it stops counting when it is rejected or cancelled; a return takes its refund back out.

State row (role "orders"): order_id, customer_id, currency, total_minor (less refunds), status, version (schema 2:
statuses up to 32 characters, returns subtracted) - what this view must remember
about an order to adjust the aggregates when a later event (which carries only the order id) changes its status.
Aggregates (role "customers") are written as increments: delta = contribution after the batch - contribution before.

Replay from a time T: orders placed from T on are refolded; every customer's count and lifetime value is then
recomputed (replay_totals) for the copied orders, and the refolded ones add their deltas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select

from orderstream.domain.events import Event, OrderPlaced, OrderReturned
from orderstream.topology import ORDERS_EVENTS
from orderstream.views.base import CLOSED_STATUSES, Row, RowChanges, StateRows, fold_order_states
from orderstream.views.spec import ProjectionSpec, ReplayScope, ViewReader
from orderstream.views.tables import TableSet

NAME = "customer-view"
SCHEMA_VERSION = 2
STATE_ROLE = "orders"


def contribution(state: Mapping[str, Any] | None) -> tuple[int, int]:
    """(orders_count, lifetime_value_minor) one order adds to its customer's row."""
    if state is None:
        return 0, 0
    return 1, 0 if state["status"] in CLOSED_STATUSES else state["total_minor"]


def project(events: Sequence[Event], current: StateRows) -> RowChanges:
    changes = RowChanges()
    for order_id, before, after in fold_order_states(events, current, _placed, _returned):
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


def _returned(row: Row, event: OrderReturned) -> Row:
    return {**row, "total_minor": row["total_minor"] - event.refund_minor}


def replay_totals(rows: Iterable[Mapping[str, Any]]) -> RowChanges:
    """The customers' aggregates of copied state rows (a replay from a time recomputes them, never copies them)."""
    changes = RowChanges()
    for row in rows:
        count, value = contribution(row)
        changes.increment(
            "customers", (row["customer_id"], row["currency"]), {"orders_count": count, "lifetime_value_minor": value}
        )
    return changes


def tables(generation: int) -> TableSet:
    g = f"g{generation}"
    metadata = MetaData()
    orders = Table(
        f"customer_view_orders_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("customer_id", String, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("total_minor", BigInteger, nullable=False),
        Column("status", String(32), nullable=False),
        Column("version", Integer, nullable=False),
    )
    customers = Table(
        f"customer_view_customers_{g}",
        metadata,
        Column("customer_id", String, primary_key=True),
        Column("currency", String(3), primary_key=True),
        Column("orders_count", BigInteger, nullable=False),
        Column("lifetime_value_minor", BigInteger, nullable=False),
    )
    return {"orders": orders, "customers": customers}


# --- queries ---


def customer_summary(model: ViewReader, customer_id: str) -> list[dict[str, Any]]:
    """A customer's orders count and lifetime value, one row per currency (empty: no such customer)."""
    with model.reading() as (conn, t):
        customers = t["customers"]
        query = (
            select(
                customers.c.customer_id,
                customers.c.currency,
                customers.c.orders_count,
                customers.c.lifetime_value_minor,
            )
            .where(customers.c.customer_id == customer_id)
            .order_by(customers.c.currency)
        )
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
