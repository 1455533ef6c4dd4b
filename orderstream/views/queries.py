"""The read side of the projections: what the CLI (and later an HTTP API) asks. Nothing else reads their tables.

Every query resolves the live generation through the pointer and checks the schema version first, binds every value
as a parameter, and takes sort columns only from an allow-list.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from orderstream.views.base import utc_text
from orderstream.views.registry import spec_of
from orderstream.views.store import NotInitialized, ProjectionStore, database_exists
from orderstream.views.tables import TableSet

ORDER_SORTS = ("placed_at", "updated_at", "total_minor", "order_id", "customer_id", "status")
SUMMARY_FIELDS = (
    "order_id", "customer_id", "status", "version", "currency", "total_minor", "payment_status", "placed_at",
    "updated_at",
)  # fmt: skip


class QueryError(ValueError):
    """A query the read model cannot answer as asked (bad sort column, bad grouping)."""


class ReadModel:
    """Read-only access to one projection's live generation. Never creates a database: a projection that never ran
    raises NotInitialized; one built by another schema version raises SchemaMismatch."""

    def __init__(self, url: str, projection: str) -> None:
        spec = spec_of(projection)
        if not database_exists(url):
            raise NotInitialized(f"{projection} has no database yet ({url}): run `orderstream run projections` first")
        self.store = ProjectionStore(url, spec)

    @contextmanager
    def reading(self) -> Iterator[tuple[Connection, TableSet]]:
        """One read transaction on the live generation's tables: the pointer and every row it reads come from one
        snapshot (SQLite: a WAL read transaction; PostgreSQL: REPEATABLE READ, as READ COMMITTED would let an order's
        summary and its timeline come from different batches, or the pointer from before a swap)."""
        conn = self.store.engine.connect()
        if self.store.engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            yield conn, self.store.tables(self.store.active_generation(conn))

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The live generation's stored next offset for a partition (None: nothing applied from it yet)."""
        return self.store.next_offsets().get((topic, partition))

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> ReadModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def order_detail(model: ReadModel, order_id: str) -> dict[str, Any] | None:
    """One order's summary with its lines and timeline, or None if the view has no such order."""
    with model.reading() as (conn, t):
        orders, lines, timeline = t["orders"], t["lines"], t["timeline"]
        row = conn.execute(select(orders).where(orders.c.order_id == order_id)).one_or_none()
        if row is None:
            return None
        detail = {name: row._mapping[name] for name in SUMMARY_FIELDS}
        detail["lines"] = [
            dict(r._mapping)
            for r in conn.execute(
                select(lines.c.sku, lines.c.quantity, lines.c.unit_price_minor)
                .where(lines.c.order_id == order_id)
                .order_by(lines.c.line_no)
            )
        ]
        detail["timeline"] = [
            dict(r._mapping)
            for r in conn.execute(
                select(timeline.c.type, timeline.c.version, timeline.c.occurred_at, timeline.c.event_id)
                .where(timeline.c.order_id == order_id)
                .order_by(timeline.c.version)
            )
        ]
        return detail


def list_orders(
    model: ReadModel,
    *,
    customer_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    sort: str = "placed_at",
    descending: bool = True,
) -> list[dict[str, Any]]:
    """Order summaries, filtered by customer, status and placed-at-or-after time, newest first by default."""
    if sort not in ORDER_SORTS:
        raise QueryError(f"cannot sort by {sort!r}; choose from: {', '.join(ORDER_SORTS)}")
    with model.reading() as (conn, t):
        orders = t["orders"]
        query = select(*(orders.c[name] for name in SUMMARY_FIELDS))
        if customer_id is not None:
            query = query.where(orders.c.customer_id == customer_id)
        if status is not None:
            query = query.where(orders.c.status == status.upper())
        if since is not None:
            query = query.where(orders.c.placed_at >= utc_text(since))
        column = orders.c[sort]
        query = query.order_by(column.desc() if descending else column.asc(), orders.c.order_id).limit(limit)
        return [dict(row._mapping) for row in conn.execute(query)]


def sales(model: ReadModel, *, by: str = "sku") -> list[dict[str, Any]]:
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


def status_counts(model: ReadModel) -> list[dict[str, Any]]:
    """How many orders are in each status right now (statuses with none left out)."""
    with model.reading() as (conn, t):
        statuses = t["statuses"]
        query = select(statuses.c.status, statuses.c.orders).where(statuses.c.orders != 0).order_by(statuses.c.status)
        return [dict(row._mapping) for row in conn.execute(query)]


def customer_summary(model: ReadModel, customer_id: str) -> list[dict[str, Any]]:
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


def stock_levels(model: ReadModel, sku: str | None = None) -> list[dict[str, Any]]:
    """On hand, reserved and available (on hand - reserved) units per SKU, by SKU; one SKU's row when sku is given
    (empty: the view knows no such SKU)."""
    with model.reading() as (conn, t):
        skus = t["skus"]
        query = select(skus.c.sku, skus.c.on_hand, skus.c.reserved).order_by(skus.c.sku)
        if sku is not None:
            query = query.where(skus.c.sku == sku)
        return [
            {
                "sku": row.sku,
                "on_hand": int(row.on_hand),
                "reserved": int(row.reserved),
                "available": int(row.on_hand) - int(row.reserved),
            }
            for row in conn.execute(query)
        ]
