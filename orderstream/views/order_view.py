"""order-view: one row per order: its current summary, its lines and the full timeline of its events.

State row (table role "orders"): order_id, customer_id, status, currency, total_minor, version, payment_status,
placed_at, updated_at, lines, timeline. lines and timeline are compact JSON text (lines_of and timeline_of read them):
an order's lines never change once placed, and its timeline is only ever read whole, so one row per order holds them
and a batch writes each touched order once, whatever the number of its events in it (rows per event were 2.75 with a
table each for lines and timeline; about 0.22 now on the bench's log, which is what a rebuild's speed is set by).
Status follows the status-changing events (base.status_after: an OrderReturned makes it
RETURNED or PARTIALLY_RETURNED); an OrderReturned adds its quantities to the order's "returns" rows (order_id, sku,
returned_quantity; increments), which `query order` shows on each line as returned_quantity; OrderPaymentUpdated sets
payment_status (None until the first one); OrderLineReservationUpdated only adds a timeline entry. Every event,
whatever its type, appends one timeline entry (version, type, occurred_at, event_id, payment_status, status) and
bumps version and updated_at. The timeline entry carries the payment status an OrderPaymentUpdated set (None for other
events), so the timeline alone holds everything the summary's fold needs: `query order --as-of` (order_as_of below)
folds it up to a moment.

Time travel: "as it was at T" means the fold of the order's events whose occurred_at is at or before T (event time,
the time the order service decided them), folded from the view's lines and timeline (never by reading Kafka).
fold_timeline() is pure; order_as_of() reads one order through the ReadModel in one transaction.

Replay from a time T: orders placed (appended) at or after T get their summary, lines and timeline rebuilt; older
orders are copied with their lines and timeline (see replay_scope.py).

Schema versions: 1 = timeline without payment_status; 2 = with it; 3 = returns (the returns table, a timeline status
column that `--as-of` folds, statuses up to 32 characters); 4 = lines and timeline as JSON columns of the orders row
(no lines and timeline tables); 5 = an index on (total_minor, order_id), for the sort by total (`query orders --sort
total_minor`, GET /orders, the console: a scan and sort of every order took 220-350 ms at 1,000,000 orders). Rebuild
with `replay projection order-view`.
"""

from __future__ import annotations

import base64
import binascii
import json
import json.encoder
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, and_, bindparam, or_, select

from orderstream.domain.events import ORDER_EVENTS, Event, OrderPaymentUpdated, OrderPlaced, OrderReturned
from orderstream.topology import ORDERS_EVENTS
from orderstream.views.base import (
    STATUS_AFTER,
    QueryError,
    RowChanges,
    StateRows,
    check_next,
    follow_versions,
    status_after,
    utc_text,
)
from orderstream.views.spec import BulkChanges, BulkForm, ProjectionSpec, ReplayScope, ViewReader
from orderstream.views.tables import TableSet

NAME = "order-view"
SCHEMA_VERSION = 5
STATE_ROLE = "orders"
ORDER_SORTS = ("placed_at", "updated_at", "total_minor", "order_id", "customer_id", "status")
SUMMARY_FIELDS = (
    "order_id", "customer_id", "status", "version", "currency", "total_minor", "payment_status", "placed_at",
    "updated_at",
)  # fmt: skip
# The order status each status-changing event type leads to, by the type name the timeline stores.
_STATUS_BY_TYPE = {kind.__name__: status for kind, status in STATUS_AFTER.items()}
_PLACED = OrderPlaced.__name__
_PAYMENT_UPDATED = OrderPaymentUpdated.__name__


def _entries_json(stored: str | None, entries: list[tuple]) -> str:
    """The timeline text of an order: `stored` (None for a new order) with the batch's entries appended. Compact JSON,
    so the text is the same whichever fold wrote it and however the events were cut into batches."""
    text = _dumps(entries)
    return text if stored is None else f"{stored[:-1]},{text[1:]}"


def _lines_json(lines: Sequence[Any]) -> str:
    return _dumps([(line.sku, line.quantity, line.unit_price_minor) for line in lines])


def _compact_encoder() -> Callable[[Any], str]:
    """Compact JSON text of lists of strings, numbers and None: the json module's C encoder made once (its
    JSONEncoder.encode builds one per call, which cost a third of the fold's time), or that encode where the C
    accelerator is missing. Both write the same text."""
    make = json.encoder.c_make_encoder
    fallback = json.JSONEncoder(separators=(",", ":")).encode
    if make is None:
        return fallback
    encode = make(None, None, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


_dumps = _compact_encoder()


def project(events: Sequence[Event], current: StateRows) -> RowChanges:
    """Fold a batch into row changes: each touched order's final row (its lines when placed, its timeline with one
    entry more per event) and its returns.

    Runs once per event of every live batch, so it works on private copies of the state rows (made once per batch)
    and updates them in place."""
    changes = RowChanges()
    orders = {order_id: dict(row) for order_id, row in current.items()}
    touched: dict[str, dict] = {}
    entries: dict[str, list[tuple]] = {}
    for event in events:
        order_id = event.order_id  # type: ignore[attr-defined]
        row = orders.get(order_id)
        check_next(event, row)
        at = utc_text(event.occurred_at)
        version = event.version
        payment_status = status = None
        if event.__class__ is OrderPlaced:
            status = "PLACED"
            row = orders[order_id] = {
                "order_id": order_id,
                "customer_id": event.customer_id,
                "status": "PLACED",
                "currency": event.currency,
                "total_minor": event.total_minor,
                "version": version,
                "payment_status": None,
                "placed_at": at,
                "updated_at": at,
                "lines": _lines_json(event.lines),
                "timeline": None,
            }
        else:
            row["version"] = version  # type: ignore[index]  # check_next guarantees the row
            row["updated_at"] = at  # type: ignore[index]
            status = status_after(event, None)
            if status is not None:
                row["status"] = status  # type: ignore[index]
            if event.__class__ is OrderReturned:
                for line in event.lines:
                    changes.increment("returns", (order_id, line.sku), {"returned_quantity": line.quantity})
            if event.__class__ is OrderPaymentUpdated:
                payment_status = row["payment_status"] = event.payment_status.value  # type: ignore[index]
        touched[order_id] = row  # type: ignore[assignment]
        entries.setdefault(order_id, []).append((version, event.type_name, at, event.event_id, payment_status, status))
    for order_id, row in touched.items():
        row["timeline"] = _entries_json(row["timeline"], entries[order_id])
    changes.upserts["orders"] = {(order_id,): row for order_id, row in touched.items()}
    return changes


# The orders table's columns in table order, and where some of them sit in a row of them.
_ORDER_COLUMNS = ("order_id", "customer_id", "status", "currency", "total_minor", "version", "payment_status",
                  "placed_at", "updated_at", "lines", "timeline")  # fmt: skip
_STATUS, _VERSION, _PAYMENT, _UPDATED, _TIMELINE, _PENDING = 2, 5, 6, 8, 10, 11
_TYPE_NAMES = {kind: kind.__name__ for kind in ORDER_EVENTS}


def bulk_fold(events: Sequence[Event], current: StateRows) -> BulkChanges | RowChanges:
    """follow_versions() then project(), as tuples: each touched order's final row, upserted once per batch, whatever
    the number of its events in it. The poison policy is the same and in the same pass: a repeat (a version at or
    below the order's) is left out, a gap raises the ProjectionError follow_versions raises, and what check_next
    refuses (placed twice, never placed, not an order event) raises as in project(); the Python per event is a few
    list operations, and the timeline entries of an order become its text in one JSON encode per batch. Orders placed
    in the batch are appended, the others upserted.
    A batch with a return is folded by project() itself (the store writes either form): the returns table is added
    to, which a bulk form (append / upsert) cannot express, and returns are rare."""
    if any(event.__class__ is OrderReturned for event in events):
        return project(follow_versions(events, current), current)
    orders: dict[str, list] = {}
    for event in events:
        kind = event.__class__
        if kind not in _TYPE_NAMES:
            check_next(event, None)  # raises: not an order event
        order_id = event.order_id  # type: ignore[attr-defined]
        row = orders.get(order_id)
        if row is None and order_id in current:
            stored = current[order_id]
            row = orders[order_id] = [*(stored[name] for name in _ORDER_COLUMNS), []]
        version = event.version
        last = 0 if row is None else row[_VERSION]
        if version != last + 1:
            if version <= last:
                continue  # a repeat: the view holds it already (follow_versions leaves it out the same way)
            follow_versions([event], {order_id: {"version": last}})  # raises: a version is missing
        at = utc_text(event.occurred_at)
        payment_status = None
        status = None
        if kind is OrderPlaced:
            status = "PLACED"
            if row is not None:
                check_next(event, {"version": last})  # raises: placed twice
            row = orders[order_id] = [order_id, event.customer_id, "PLACED", event.currency, event.total_minor,  # type: ignore[attr-defined]
                                      version, None, at, at, _lines_json(event.lines), None, []]  # type: ignore[attr-defined]  # fmt: skip
        else:
            if row is None:
                check_next(event, None)  # raises: never placed
            row[_VERSION] = version  # type: ignore[index]
            row[_UPDATED] = at  # type: ignore[index]
            status = STATUS_AFTER.get(kind)
            if status is not None:
                row[_STATUS] = status  # type: ignore[index]
            if kind is OrderPaymentUpdated:
                payment_status = row[_PAYMENT] = event.payment_status.value  # type: ignore[attr-defined,index]
        row[_PENDING].append((version, _TYPE_NAMES[kind], at, event.event_id, payment_status, status))  # type: ignore[index]
    new, stored = [], []
    for row in orders.values():
        pending = row.pop()
        if not pending:
            continue  # only repeats of this order in the batch: its stored row stays as it is
        (stored if row[_TIMELINE] is not None else new).append(row)
        row[_TIMELINE] = _entries_json(row[_TIMELINE], pending)
    # an order placed in this batch has no row yet (`current` holds every order of the batch the table holds, and no
    # other writer adds rows of this partition's orders: store.apply checks the positions under its lock), so it is
    # appended: COPY straight into the table on PostgreSQL, without the stage table and the merge an upsert needs
    return [("orders", "append", list(map(tuple, new))), ("orders", "upsert", list(map(tuple, stored)))]


def tables(generation: int) -> TableSet:
    """The view's tables of one generation (see tables.py for the naming and the bookkeeping tables)."""
    g = f"g{generation}"
    metadata = MetaData()
    orders = Table(
        f"order_view_orders_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("customer_id", String, nullable=False),
        Column("status", String(32), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("total_minor", BigInteger, nullable=False),
        Column("version", Integer, nullable=False),
        Column("payment_status", String(16)),
        Column("placed_at", String(32), nullable=False),
        Column("updated_at", String(32), nullable=False),
        Column("lines", Text, nullable=False),  # JSON: [[sku, quantity, unit_price_minor], ...] in line order
        # JSON: one [version, type, occurred_at, event_id, payment_status, status] per event, in version order
        Column("timeline", Text, nullable=False),
    )
    Index(f"ix_order_view_orders_{g}_customer", orders.c.customer_id, orders.c.placed_at)
    Index(f"ix_order_view_orders_{g}_status", orders.c.status, orders.c.placed_at)
    Index(f"ix_order_view_orders_{g}_placed", orders.c.placed_at)
    Index(f"ix_order_view_orders_{g}_total", orders.c.total_minor, orders.c.order_id)  # never changes once placed
    returns = Table(
        f"order_view_returns_{g}",
        metadata,
        Column("order_id", String, primary_key=True),
        Column("sku", String, primary_key=True),
        Column("returned_quantity", BigInteger, nullable=False),
    )
    return {"orders": orders, "returns": returns}


# --- queries ---


@dataclass(frozen=True)
class _DetailStatements:
    """order_detail's statements for one generation's tables, built once: SQLAlchemy then skips building each
    statement and its cache key on every call (py-spy on GET /orders/{id} under wrk: a quarter of the request's
    Python time went to building them)."""

    order: Any
    order_columns: tuple[str, ...]  # the names of order's columns, in its row's order
    returns: Any


_DETAIL_STATEMENTS: dict[Table, _DetailStatements] = {}  # by a generation's orders table (each store has its own)
_DETAIL_STATEMENTS_KEPT = 64  # stores x generations one process reads; past it the cache starts again


def _detail_statements(t: TableSet) -> _DetailStatements:
    statements = _DETAIL_STATEMENTS.get(t["orders"])
    if statements is None:
        if len(_DETAIL_STATEMENTS) >= _DETAIL_STATEMENTS_KEPT:
            _DETAIL_STATEMENTS.clear()
        orders, returns = t["orders"], t["returns"]
        order_id = bindparam("order_id")
        statements = _DetailStatements(
            order=select(orders).where(orders.c.order_id == order_id),
            order_columns=tuple(orders.c.keys()),
            returns=select(returns.c.sku, returns.c.returned_quantity).where(returns.c.order_id == order_id),
        )
        _DETAIL_STATEMENTS[t["orders"]] = statements
    return statements


def order_detail(model: ViewReader, order_id: str) -> dict[str, Any] | None:
    """One order's summary with its lines (each with its returned_quantity) and timeline, or None if the view has no
    such order."""
    with model.point_reading() as (rows, t):
        statements = _detail_statements(t)
        key = {"order_id": order_id}
        found = rows(statements.order, key)
        if not found:
            return None
        returned = {sku: int(quantity) for sku, quantity in rows(statements.returns, key)}
    row = dict(zip(statements.order_columns, found[0], strict=True))
    detail = {name: row[name] for name in SUMMARY_FIELDS}
    detail["lines"] = [{**line, "returned_quantity": returned.get(line["sku"], 0)} for line in lines_of(row["lines"])]
    detail["timeline"] = [
        {"type": e["type"], "version": e["version"], "occurred_at": e["occurred_at"], "event_id": e["event_id"]}
        for e in timeline_of(row["timeline"])
    ]
    return detail


def lines_of(text: str) -> list[dict[str, Any]]:
    """An order row's lines column, as {sku, quantity, unit_price_minor} in line order."""
    return [
        {"sku": sku, "quantity": quantity, "unit_price_minor": unit_price_minor}
        for sku, quantity, unit_price_minor in json.loads(text)
    ]


def timeline_of(text: str) -> list[dict[str, Any]]:
    """An order row's timeline column, as {version, type, occurred_at, event_id, payment_status, status} in version
    order."""
    return [
        {"version": version, "type": kind, "occurred_at": at, "event_id": event_id,
         "payment_status": payment_status, "status": status}
        for version, kind, at, event_id, payment_status, status in json.loads(text)
    ]  # fmt: skip


def list_orders(
    model: ViewReader,
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


class InvalidCursor(QueryError):
    """A cursor this read model did not hand out (or one for another selection)."""


@dataclass(frozen=True, slots=True)
class OrderSelection:
    """Which orders, in what order: the filters and the sort of a walk through the order view."""

    customer_id: str | None = None
    status: str | None = None
    since: str | None = None  # RFC 3339 UTC text (base.utc_text)
    sort: str = "placed_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.sort not in ORDER_SORTS:
            raise QueryError(f"cannot sort by {self.sort!r}; choose from: {', '.join(ORDER_SORTS)}")


@dataclass(frozen=True, slots=True)
class OrderCursor:
    """Where a walk stopped: its selection and the sort key (sort value, order id) of the last order handed out.

    Opaque to clients: url-safe base64 of a small JSON document. Keyset pagination: the next page is the orders
    strictly after that key in the selection's order, so however many orders arrive or change meanwhile, an order
    whose sort value does not change (placed_at, order_id, customer_id, total_minor never do) is handed out exactly
    once; sorting by updated_at or status, an order that changes while the walk goes on may move past the cursor."""

    selection: OrderSelection
    last_value: Any
    last_order_id: str

    def encode(self) -> str:
        s = self.selection
        document = [1, s.customer_id, s.status, s.since, s.sort, s.descending, self.last_value, self.last_order_id]
        return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> OrderCursor:
        try:
            if len(text) > MAX_CURSOR_LENGTH:
                raise ValueError("too long")
            document = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            version, customer_id, status, since, sort, descending, last_value, last_order_id = document
            if version != 1 or not isinstance(descending, bool) or not isinstance(last_order_id, str):
                raise TypeError("not a cursor")
            for value in (customer_id, status, since):
                if value is not None and not isinstance(value, str):
                    raise TypeError("not a cursor")
            selection = OrderSelection(customer_id, status, since, sort, descending)
            expected = int if sort == "total_minor" else str
            if not isinstance(last_value, expected) or isinstance(last_value, bool):
                raise TypeError("not a cursor")
        except (ValueError, TypeError, QueryError, binascii.Error, UnicodeDecodeError):
            raise InvalidCursor("the cursor is not one this API handed out (use the `next` of the last page)") from None
        return cls(selection, last_value, last_order_id)


MAX_CURSOR_LENGTH = 4_096
MAX_PAGE = 10_000


def page_orders(
    model: ViewReader, selection: OrderSelection, limit: int = 50, after: OrderCursor | None = None
) -> tuple[list[dict[str, Any]], OrderCursor | None]:
    """One page of order summaries of `selection`, after the cursor (None: from the start), and the cursor of the
    next page (None when this page is the last)."""
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError(f"a page holds 1 to {MAX_PAGE} orders, not {limit}")
    if after is not None and after.selection != selection:
        raise InvalidCursor("the cursor belongs to another selection (other filters or sort)")
    with model.reading() as (conn, t):
        orders = t["orders"]
        query = select(*(orders.c[name] for name in SUMMARY_FIELDS))
        if selection.customer_id is not None:
            query = query.where(orders.c.customer_id == selection.customer_id)
        if selection.status is not None:
            query = query.where(orders.c.status == selection.status.upper())
        if selection.since is not None:
            query = query.where(orders.c.placed_at >= selection.since)
        column, order_id = orders.c[selection.sort], orders.c.order_id
        if after is not None:
            if selection.sort == "order_id":
                query = query.where(order_id > after.last_order_id)
            else:
                beyond = column < after.last_value if selection.descending else column > after.last_value
                query = query.where(or_(beyond, and_(column == after.last_value, order_id > after.last_order_id)))
        ordering = [column.desc() if selection.descending else column.asc()]
        if selection.sort != "order_id":
            ordering.append(order_id.asc())
        rows = [dict(row._mapping) for row in conn.execute(query.order_by(*ordering).limit(limit + 1))]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, OrderCursor(selection, last[selection.sort], last["order_id"])


def walk_orders(model: ViewReader, selection: OrderSelection, page: int = 1_000) -> Iterator[dict[str, Any]]:
    """Every order of the selection, page by page (one short read transaction per page, so a long export never
    holds a snapshot open)."""
    cursor = None
    while True:
        rows, cursor = page_orders(model, selection, page, cursor)
        yield from rows
        if cursor is None:
            return


def fold_timeline(
    placed: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], timeline: Sequence[Mapping[str, Any]], as_of: str
) -> dict[str, Any] | None:
    """The order's detail (query order's fields) as of `as_of` (RFC 3339 UTC text, base.utc_text), or None when it
    was not placed yet. `placed` holds the immutable facts of the order (order_id, customer_id, currency,
    total_minor); `timeline` its rows in version order."""
    seen = [entry for entry in timeline if entry["occurred_at"] <= as_of]
    if not seen or seen[0]["type"] != _PLACED:
        return None
    status, payment_status = "PLACED", None
    for entry in seen:
        status = entry.get("status") or _STATUS_BY_TYPE.get(entry["type"], status)
        if entry["type"] == _PAYMENT_UPDATED:
            payment_status = entry["payment_status"]
    return {
        "order_id": placed["order_id"],
        "customer_id": placed["customer_id"],
        "status": status,
        "version": seen[-1]["version"],
        "currency": placed["currency"],
        "total_minor": placed["total_minor"],
        "payment_status": payment_status,
        "placed_at": seen[0]["occurred_at"],
        "updated_at": seen[-1]["occurred_at"],
        "as_of": as_of,
        "lines": [dict(line) for line in lines],
        "timeline": [
            {"type": e["type"], "version": e["version"], "occurred_at": e["occurred_at"], "event_id": e["event_id"]}
            for e in seen
        ],
    }


def order_as_of(model: ViewReader, order_id: str, moment: datetime) -> dict[str, Any] | None:
    """One order as it was at `moment` (see the module docstring); None if the view has no such order or it was
    placed after `moment`. Reads the live generation of order-view in one transaction."""
    with model.reading() as (conn, t):
        orders = t["orders"]
        row = conn.execute(
            select(orders.c.order_id, orders.c.customer_id, orders.c.currency, orders.c.total_minor, orders.c.lines,
                   orders.c.timeline).where(orders.c.order_id == order_id)
        ).one_or_none()  # fmt: skip
    if row is None:
        return None
    return fold_timeline(row._mapping, lines_of(row.lines), timeline_of(row.timeline), utc_text(moment))


SPEC = ProjectionSpec(
    name=NAME,
    schema_version=SCHEMA_VERSION,
    topics=(ORDERS_EVENTS,),
    state_role=STATE_ROLE,
    tables=tables,
    project=project,
    replay_scope=ReplayScope({"orders": "order_id", "returns": "order_id"}),
    bulk=BulkForm(bulk_fold, follows_versions=True),
)
