"""Every table of every projection (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Two kinds of tables live in each projection's database:
- Bookkeeping, shared by all generations: projection_meta (the pointer: which generation is live and the schema
  version it was built with) and projection_offsets (per projection, generation, topic and partition: the next
  offset to read; its primary key makes the position unique).
- The projection's own tables, named with a generation suffix (order_view_orders_g1, ...). A rebuild writes a whole
  new generation next to the live one, with its own offsets rows, then swaps it in by updating the pointer in one
  transaction. Readers and the live projector always resolve the generation through the pointer.

Timestamps are stored as RFC 3339 UTC text (base.utc_text), days as YYYY-MM-DD: identical on every database and
sortable as text. Money is BigInteger minor units next to its currency.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

TableSet = dict[str, Table]

bookkeeping = MetaData()

projection_meta = Table(
    "projection_meta",
    bookkeeping,
    Column("projection", String(64), primary_key=True),
    Column("schema_version", Integer, nullable=False),
    Column("active_generation", Integer, nullable=False),
)

projection_offsets = Table(
    "projection_offsets",
    bookkeeping,
    Column("projection", String(64), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)


def order_view_tables(generation: int) -> TableSet:
    g = f"g{generation}"
    metadata = MetaData()
    orders = Table(
        f"order_view_orders_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("customer_id", String, nullable=False),
        Column("status", String(16), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("total_minor", BigInteger, nullable=False),
        Column("version", Integer, nullable=False),
        Column("payment_status", String(16)),
        Column("placed_at", String(32), nullable=False),
        Column("updated_at", String(32), nullable=False),
    )
    Index(f"ix_order_view_orders_{g}_customer", orders.c.customer_id, orders.c.placed_at)
    Index(f"ix_order_view_orders_{g}_status", orders.c.status, orders.c.placed_at)
    Index(f"ix_order_view_orders_{g}_placed", orders.c.placed_at)
    lines = Table(
        f"order_view_lines_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("line_no", Integer, primary_key=True),
        Column("sku", String, nullable=False),
        Column("quantity", Integer, nullable=False),
        Column("unit_price_minor", BigInteger, nullable=False),
    )
    timeline = Table(
        f"order_view_timeline_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("type", String(64), nullable=False),
        Column("occurred_at", String(32), nullable=False),
        Column("event_id", String, nullable=False),
        Column("payment_status", String(16)),  # OrderPaymentUpdated's value (schema v2: what `query --as-of` folds)
    )
    return {"orders": orders, "lines": lines, "timeline": timeline}


def customer_view_tables(generation: int) -> TableSet:
    g = f"g{generation}"
    metadata = MetaData()
    orders = Table(
        f"customer_view_orders_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("customer_id", String, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("total_minor", BigInteger, nullable=False),
        Column("status", String(16), nullable=False),
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


def sales_view_tables(generation: int) -> TableSet:
    g = f"g{generation}"
    metadata = MetaData()
    orders = Table(
        f"sales_view_orders_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("day", String(10), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("status", String(16), nullable=False),
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
        Column("status", String(16), primary_key=True),
        Column("orders", BigInteger, nullable=False),
    )
    return {"orders": orders, "daily": daily, "statuses": statuses}


def stock_view_tables(generation: int) -> TableSet:
    g = f"g{generation}"
    metadata = MetaData()
    skus = Table(
        f"stock_view_skus_{g}",
        metadata,
        Column("sku", String, primary_key=True),
        Column("on_hand", BigInteger, nullable=False),
        Column("reserved", BigInteger, nullable=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", String(32), nullable=False),
    )
    return {"skus": skus}


TABLES: dict[str, Callable[[int], TableSet]] = {
    "order-view": order_view_tables,
    "customer-view": customer_view_tables,
    "sales-view": sales_view_tables,
    "stock-view": stock_view_tables,
}
