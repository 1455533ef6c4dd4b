"""What a projection function returns, and the fold rules every order projection shares. Pure: no SQL, no I/O.

A projection function has the shape project(events, current) -> RowChanges, where `current` maps each order id the
batch touches to its state row as stored before the batch (absent = never seen), and `events` are the batch's events
in log order. The function folds all events of one order before it emits that order's rows, so a batch of any size
writes each row once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orderstream.domain.events import (
    ORDER_EVENTS,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
)

Key = tuple[Any, ...]
Row = dict[str, Any]
StateRows = Mapping[str, Mapping[str, Any]]

# The order status each status-changing event leads to. Events not listed leave the status as it is.
STATUS_AFTER: dict[type[Event], str] = {
    OrderPlaced: "PLACED",
    OrderConfirmed: "CONFIRMED",
    OrderRejected: "REJECTED",
    OrderCancelled: "CANCELLED",
    OrderShipped: "SHIPPED",
    OrderDelivered: "DELIVERED",
}
STATUSES: tuple[str, ...] = (*STATUS_AFTER.values(), "PARTIALLY_RETURNED", "RETURNED")
CLOSED_STATUSES = frozenset({"REJECTED", "CANCELLED"})


def status_after(event: Event, status: str | None) -> str | None:
    """The order's status after an event: STATUS_AFTER's, or for an OrderReturned RETURNED (nothing delivered left)
    or PARTIALLY_RETURNED; other events leave `status` as it is."""
    if isinstance(event, OrderReturned):
        return "RETURNED" if event.fully_returned else "PARTIALLY_RETURNED"
    return STATUS_AFTER.get(type(event), status)


def kept_lines(lines: list[list[int | str]], returned: OrderReturned) -> list[list[int | str]]:
    """[sku, quantity, unit_price_minor] lines less the quantities an OrderReturned took back."""
    back: dict[str, int] = {}
    for line in returned.lines:
        back[line.sku] = back.get(line.sku, 0) + line.quantity
    kept = []
    for sku, quantity, price in lines:  # an old order may name a SKU on two lines: take back from the first first
        taken = min(back.get(sku, 0), quantity)  # type: ignore[call-overload]
        back[sku] = back.get(sku, 0) - taken  # type: ignore[index]
        kept.append([sku, quantity - taken, price])  # type: ignore[operator]
    return kept


class ProjectionError(Exception):
    """An event cannot be folded into the view (wrong type, never-placed order, version out of order).

    The projector does not apply it: it applies the batch again one record per transaction and hands the failing
    record to its failure hook (stage apply), which by default dead-letters it to <topic>.dlq, so the view never
    silently diverges from the log. A replay skips it the same way (without a letter: the live group wrote it).
    """


class QueryError(ValueError):
    """A query a read model cannot answer as asked (bad sort column, bad grouping)."""


@dataclass
class RowChanges:
    """A batch's effect on a projection's tables, by table role.

    - upserts: role -> primary key -> the complete row (written as insert-or-replace).
    - increments: role -> primary key -> {counter column: delta} (written as insert-or-add).
    Keys are tuples in the table's primary-key column order.
    """

    upserts: dict[str, dict[Key, Row]] = field(default_factory=dict)
    increments: dict[str, dict[Key, dict[str, int]]] = field(default_factory=dict)

    def upsert(self, role: str, key: Key, row: Row) -> None:
        self.upserts.setdefault(role, {})[key] = row

    def increment(self, role: str, key: Key, deltas: Mapping[str, int]) -> None:
        counters = self.increments.setdefault(role, {}).setdefault(key, {})
        for column, delta in deltas.items():
            counters[column] = counters.get(column, 0) + delta

    def without_zero_increments(self) -> RowChanges:
        increments = {
            role: {key: deltas for key, deltas in rows.items() if any(deltas.values())}
            for role, rows in self.increments.items()
        }
        return RowChanges(self.upserts, {role: rows for role, rows in increments.items() if rows})


def utc_text(moment: datetime) -> str:
    """A timestamp as the views store it: RFC 3339 UTC with microseconds (sorts as text, same on every database)."""
    if moment.tzinfo is not UTC:
        moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)
    # what isoformat(timespec="microseconds") writes, in half its time (a view formats one per event)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


def utc_day(moment: datetime) -> str:
    """The UTC calendar day of a moment, YYYY-MM-DD."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


def check_next(event: Event, state: Mapping[str, Any] | None) -> None:
    """The event must be an order event that follows the stored state: placed first, versions strictly increasing."""
    if not isinstance(event, ORDER_EVENTS):
        raise ProjectionError(
            f"{event.type_name} {event.event_id} is not an order event; orders.events holds only those"
        )
    order_id = event.order_id  # type: ignore[attr-defined]
    if isinstance(event, OrderPlaced):
        if state is not None:
            raise ProjectionError(f"order {order_id} placed twice (event {event.event_id}, version {event.version})")
        return
    if state is None:
        raise ProjectionError(f"{event.type_name} v{event.version} for order {order_id}, which was never placed")
    if event.version <= state["version"]:
        raise ProjectionError(
            f"{event.type_name} v{event.version} for order {order_id} arrived after v{state['version']}: "
            "a duplicate or out-of-order event"
        )


def follow_versions(events: Sequence[Event], current: StateRows, *, gaps: bool = False) -> list[Event]:
    """The batch's events that follow their aggregate's state row (`current`, by aggregate id), in log order.

    The poison policy of every read path (docs/ARCHITECTURE.md, "Dead letters"): an event whose version is at or
    below the version its aggregate is at is a repeat (a copy written back, e.g. by `replay topic --force`) and is
    left out, silently: the view holds it already. One that skips a version (a gap) raises ProjectionError, so the
    projector dead-letters it and a replay skips it. A message without a version is left for the fold to judge.
    gaps=True: the versions only increase per aggregate (a payment event's version is its place in its customer's
    ledger, so an order's payment events skip numbers): repeats are still left out, a gap is no error."""
    versions = {aggregate_id: row["version"] for aggregate_id, row in current.items()}
    kept: list[Event] = []
    for event in events:
        version = getattr(event, "version", None)
        if not isinstance(version, int):
            kept.append(event)
            continue
        key = event.aggregate_id  # a property: read once (this loop runs once per event of every batch)
        last = versions.get(key, 0)
        if version <= last:
            continue
        if version != last + 1 and not gaps:
            raise ProjectionError(f"{event.type_name} v{version} for {key}, which is at v{last}: a version is missing")
        versions[key] = version
        kept.append(event)
    return kept


def fold_order_states(
    events: Sequence[Event],
    current: StateRows,
    placed_row: Callable[[OrderPlaced], Row],
    returned_row: Callable[[Row, OrderReturned], Row] | None = None,
) -> Iterator[tuple[str, Mapping[str, Any] | None, Row]]:
    """The state-row fold an aggregate view needs: each touched order's (id, row before the batch, row after it), in
    the order first touched. OrderPlaced makes the row (placed_row gives its fields; status PLACED and the version are
    added); any later event moves the version and, for a status change, the status; returned_row (if given) adjusts
    the row to what an OrderReturned took back."""
    orders = {order_id: dict(row) for order_id, row in current.items()}
    touched: dict[str, None] = {}
    for event in events:
        order_id = event.order_id  # type: ignore[attr-defined]
        row = orders.get(order_id)
        check_next(event, row)
        if isinstance(event, OrderPlaced):
            row = {"order_id": order_id, **placed_row(event), "status": "PLACED", "version": event.version}
        else:
            row = {**row, "version": event.version, "status": status_after(event, row["status"])}  # type: ignore[index]
            if returned_row is not None and isinstance(event, OrderReturned):
                row = returned_row(row, event)
        orders[order_id] = row
        touched[order_id] = None
    for order_id in touched:
        yield order_id, current.get(order_id), orders[order_id]
