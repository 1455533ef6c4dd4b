"""stock-view: on hand, reserved and available units per SKU, from inventory.events (keyed by SKU).

Every stock event but a rejection carries the SKU's numbers after it (StockAdded and StockReturned: on_hand;
StockReserved, StockReleased and StockShipped: on_hand and reserved), so the row of a SKU is the numbers of its latest
event; a rejection moves only the version. available = on_hand - reserved is derived when queried, never stored.

State row (role "skus", keyed by the event's aggregate id, the SKU): sku, on_hand, reserved, version, updated_at.
Versions of a SKU's stream must strictly increase: a duplicate or out-of-order event raises ProjectionError, which
the projector's default failure hook dead-letters (stage apply) before it goes on; a replay stops on it.

Replay from a time T: SKUs whose first stock event is at or after T are rebuilt; other SKUs' rows are copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select

from orderstream.domain.events import (
    INVENTORY_EVENTS,
    Event,
    StockAdded,
    StockReleased,
    StockReserved,
    StockReturned,
    StockShipped,
)
from orderstream.topology import INVENTORY_EVENTS as INVENTORY_EVENTS_TOPIC
from orderstream.views.base import ProjectionError, RowChanges, StateRows, utc_text
from orderstream.views.spec import ProjectionSpec, ReplayScope, ViewReader
from orderstream.views.tables import TableSet

NAME = "stock-view"
SCHEMA_VERSION = 1
STATE_ROLE = "skus"
TOPICS = (INVENTORY_EVENTS_TOPIC,)


def project(events: Sequence[Event], current: StateRows) -> RowChanges:
    skus = {sku: dict(row) for sku, row in current.items()}
    touched: dict[str, None] = {}
    for event in events:
        if not isinstance(event, INVENTORY_EVENTS):
            raise ProjectionError(
                f"{event.type_name} {event.event_id} is not a stock event; inventory.events holds only those"
            )
        sku = event.sku  # type: ignore[attr-defined]
        row = skus.get(sku) or {"sku": sku, "on_hand": 0, "reserved": 0, "version": 0}
        if event.version <= row["version"]:
            raise ProjectionError(
                f"{event.type_name} v{event.version} for sku {sku} arrived after v{row['version']}: "
                "a duplicate or out-of-order event"
            )
        row = {**row, "version": event.version, "updated_at": utc_text(event.occurred_at)}
        if isinstance(event, StockAdded | StockReturned):
            row["on_hand"] = event.on_hand
        elif isinstance(event, StockReserved | StockReleased | StockShipped):
            row["on_hand"], row["reserved"] = event.on_hand, event.reserved
        skus[sku] = row
        touched[sku] = None
    changes = RowChanges()
    for sku in touched:
        changes.upsert(STATE_ROLE, (sku,), skus[sku])
    return changes


def tables(generation: int) -> TableSet:
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


# --- queries ---


def stock_levels(model: ViewReader, sku: str | None = None) -> list[dict[str, Any]]:
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


SPEC = ProjectionSpec(
    name=NAME,
    schema_version=SCHEMA_VERSION,
    topics=TOPICS,
    state_role=STATE_ROLE,
    tables=tables,
    project=project,
    replay_scope=ReplayScope({"skus": "sku"}),
)
