"""payment-view: per order and per customer, the money authorized, captured, refunded and voided, from payments.events.

payments.events holds every payment decision keyed by order id (the payment service's customer stage writes them).
Per order (state role "orders", keyed by order id): customer_id, currency, authorized_minor (0 if declined),
captured_minor, refunded_minor, voided_minor, status (AUTHORIZED, DECLINED, VOIDED, CAPTURED, PARTIALLY_REFUNDED,
REFUNDED), version (the payment event's position in its customer's ledger: increasing per order too), updated_at.
Per customer and currency (role "customers", increments): the same four sums over the customer's orders.
outstanding = authorized - captured - voided is derived when queried: what still holds the credit limit. A
PaymentRefunded of a payment never captured (written before capture existed) released the authorization: it counts as
voided, never as money given back.

Replay from a time T: orders whose first payment event is at or after T are refolded; the customers' sums are
recomputed (replay_totals) from the copied order rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select

from orderstream.domain.events import (
    PAYMENT_EVENTS,
    Event,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
)
from orderstream.topology import PAYMENTS_EVENTS
from orderstream.views.base import ProjectionError, RowChanges, StateRows, utc_text
from orderstream.views.spec import ProjectionSpec, ReplayScope, ViewReader
from orderstream.views.tables import TableSet

NAME = "payment-view"
SCHEMA_VERSION = 1
STATE_ROLE = "orders"
TOPICS = (PAYMENTS_EVENTS,)
AMOUNTS = ("authorized_minor", "captured_minor", "refunded_minor", "voided_minor")


def fold(row: Mapping[str, Any] | None, event: Event) -> dict[str, Any]:
    """An order's payment row after one payment event. Pure."""
    if not isinstance(event, PAYMENT_EVENTS):
        raise ProjectionError(f"{event.type_name} {event.event_id} is not a payment event; payments.events holds those")
    order_id = event.order_id  # type: ignore[attr-defined]
    if row is not None and event.version <= row["version"]:
        raise ProjectionError(
            f"{event.type_name} v{event.version} for order {order_id} arrived after v{row['version']}: "
            "a duplicate or out-of-order event"
        )
    new = dict(row) if row is not None else {"order_id": order_id, **dict.fromkeys(AMOUNTS, 0), "status": ""}
    amount = event.amount_minor  # type: ignore[attr-defined]
    new |= {
        "customer_id": event.customer_id,  # type: ignore[attr-defined]
        "currency": event.currency,  # type: ignore[attr-defined]
        "version": event.version,
        "updated_at": utc_text(event.occurred_at),
    }
    match event:
        case PaymentAuthorized():
            new["authorized_minor"], new["status"] = amount, "AUTHORIZED"
        case PaymentDeclined():
            new["status"] = "DECLINED"
        case PaymentVoided():
            new["voided_minor"], new["status"] = new["voided_minor"] + amount, "VOIDED"
        case PaymentCaptured():
            new["captured_minor"], new["status"] = new["captured_minor"] + amount, "CAPTURED"
        case PaymentRefunded() if new["captured_minor"] == 0:  # a release written before capture existed
            new["voided_minor"], new["status"] = new["voided_minor"] + amount, "VOIDED"
        case PaymentRefunded():
            new["refunded_minor"] += amount
            new["status"] = "REFUNDED" if new["refunded_minor"] >= new["captured_minor"] else "PARTIALLY_REFUNDED"
    return new


def project(events: Sequence[Event], current: StateRows) -> RowChanges:
    orders = {order_id: dict(row) for order_id, row in current.items()}
    touched: dict[str, None] = {}
    for event in events:
        order_id = event.order_id  # type: ignore[attr-defined]
        orders[order_id] = fold(orders.get(order_id), event)
        touched[order_id] = None
    changes = RowChanges()
    for order_id in touched:
        before, after = current.get(order_id), orders[order_id]
        changes.upsert(STATE_ROLE, (order_id,), after)
        changes.increment(
            "customers",
            (after["customer_id"], after["currency"]),
            {name: after[name] - (before[name] if before else 0) for name in AMOUNTS},
        )
    return changes.without_zero_increments()


def replay_totals(rows: Iterable[Mapping[str, Any]]) -> RowChanges:
    """The customers' sums of copied order rows (a replay from a time recomputes them, never copies them)."""
    changes = RowChanges()
    for row in rows:
        changes.increment("customers", (row["customer_id"], row["currency"]), {name: row[name] for name in AMOUNTS})
    return changes


def tables(generation: int) -> TableSet:
    g = f"g{generation}"
    metadata = MetaData()
    orders = Table(
        f"payment_view_orders_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("customer_id", String, nullable=False),
        Column("currency", String(3), nullable=False),
        *(Column(name, BigInteger, nullable=False) for name in AMOUNTS),
        Column("status", String(32), nullable=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", String(32), nullable=False),
    )
    customers = Table(
        f"payment_view_customers_{g}",
        metadata,
        Column("customer_id", String, primary_key=True),
        Column("currency", String(3), primary_key=True),
        *(Column(name, BigInteger, nullable=False) for name in AMOUNTS),
    )
    return {"orders": orders, "customers": customers}


# --- queries ---


def _with_outstanding(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: (int(value) if key in AMOUNTS else value) for key, value in row.items()}
    out["outstanding_minor"] = out["authorized_minor"] - out["captured_minor"] - out["voided_minor"]
    return out


def order_payments(
    model: ViewReader, *, order_id: str | None = None, customer_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Per order: authorized, captured, refunded, voided and outstanding amounts and the status; by order id."""
    with model.reading() as (conn, t):
        orders = t["orders"]
        query = select(
            orders.c.order_id, orders.c.customer_id, orders.c.currency, *(orders.c[n] for n in AMOUNTS), orders.c.status
        )
        if order_id is not None:
            query = query.where(orders.c.order_id == order_id)
        if customer_id is not None:
            query = query.where(orders.c.customer_id == customer_id)
        return [_with_outstanding(row._mapping) for row in conn.execute(query.order_by(orders.c.order_id).limit(limit))]


def customer_payments(model: ViewReader, customer_id: str) -> list[dict[str, Any]]:
    """A customer's sums per currency (empty: no payment of that customer)."""
    with model.reading() as (conn, t):
        customers = t["customers"]
        query = (
            select(customers.c.customer_id, customers.c.currency, *(customers.c[n] for n in AMOUNTS))
            .where(customers.c.customer_id == customer_id)
            .order_by(customers.c.currency)
        )
        return [_with_outstanding(row._mapping) for row in conn.execute(query)]


SPEC = ProjectionSpec(
    name=NAME,
    schema_version=SCHEMA_VERSION,
    topics=TOPICS,
    state_role=STATE_ROLE,
    tables=tables,
    project=project,
    replay_scope=ReplayScope({"orders": "order_id"}, replay_totals),
    version_gaps=True,
)
