"""The tables every projection shares (SQLAlchemy Core), the same on SQLite and PostgreSQL; each view module defines
its own (tables(generation)).

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

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

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
