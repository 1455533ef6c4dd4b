"""The shapes of the read models' answers: one pydantic model per query result, printed by the CLI's --json and
returned by the HTTP API, so the two cannot drift. Field names are the stable contract of docs/DESIGN's "CLI
contract" (add fields freely, never rename these). Light on purpose: pydantic only, no SQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLine(_Answer):
    sku: str
    quantity: int
    unit_price_minor: int
    returned_quantity: int | None = None  # units of the line returned so far (the order view; not in --as-of)


class TimelineEntry(_Answer):
    type: str
    version: int
    occurred_at: str
    event_id: str


class OrderSummary(_Answer):
    """One order's summary (`query orders --json` lists these; GET /orders pages them)."""

    order_id: str
    customer_id: str
    status: str
    version: int
    currency: str
    total_minor: int
    payment_status: str | None
    placed_at: str
    updated_at: str


class OrderDetail(OrderSummary):
    """`query order --json`, GET /orders/{id}: the summary with lines and timeline. as_of: set when it was folded
    as of a moment (--as-of, ?as_of=)."""

    as_of: str | None = None
    lines: list[OrderLine]
    timeline: list[TimelineEntry]


class OrderPage(_Answer):
    """One page of GET /orders (and `query orders --cursor`): items, and the cursor of the next page (None: last)."""

    items: list[OrderSummary]
    next: str | None


class StockLevel(_Answer):
    sku: str
    on_hand: int
    reserved: int
    available: int


class CustomerTotal(_Answer):
    """A customer's orders count and lifetime value in one currency."""

    customer_id: str
    currency: str
    orders_count: int
    lifetime_value_minor: int


class SalesRow(_Answer):
    """Booked units and revenue of one group (sku, day, or both) in one currency."""

    sku: str | None = None
    day: str | None = None
    currency: str
    units: int
    revenue_minor: int


class StatusCount(_Answer):
    status: str
    orders: int


class SalesReport(_Answer):
    """`query sales --json`, GET /sales."""

    by: str
    rows: list[SalesRow]
    statuses: list[StatusCount]


def dump(model: BaseModel) -> dict:
    """The JSON-ready dict of an answer, without the optional fields its query did not fill (so a sales row by sku
    has no "day": exactly the keys the CLI always printed)."""
    return model.model_dump(mode="json", exclude_unset=True)


def orders_csv(rows: Iterable[dict[str, Any]], chunk_chars: int = 64_000) -> Iterator[str]:
    """Order summaries as CSV (a header row of OrderSummary's fields, then one row per order; None as empty), in
    chunks of about chunk_chars: what `query orders --csv` prints and GET /orders with Accept: text/csv streams."""
    fields = list(OrderSummary.model_fields)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([row[name] for name in fields])
        if out.tell() >= chunk_chars:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
