"""Random valid order histories (hypothesis strategies) and an independent reference fold of the read models.

The reference computes each view's expected rows directly from every order's whole history (its final state), not
batch by batch through deltas as the projections do, so the two are independent ways to the same answer.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from orderstream.domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderLineReservationUpdated,
    OrderPaymentUpdated,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
    PaymentStatus,
    ReservationStatus,
)
from orderstream.views.base import utc_day, utc_text

# The rules of issue 5, written out again here so the reference does not borrow them from the code it checks.
STATUS_AFTER = {
    OrderPlaced: "PLACED", OrderConfirmed: "CONFIRMED", OrderRejected: "REJECTED", OrderCancelled: "CANCELLED",
    OrderShipped: "SHIPPED", OrderDelivered: "DELIVERED", OrderReturned: "RETURNED",
}  # fmt: skip
CLOSED_STATUSES = {"REJECTED", "CANCELLED"}  # left out of a customer's lifetime value
BOOKED_STATUSES = {"SHIPPED", "DELIVERED"}  # counted in sales: captured (a RETURNED order was refunded whole)

EPOCH = datetime(2024, 3, 30, 21, 0, tzinfo=UTC)  # close to midnight: histories span several UTC days
TERMINAL_PATHS = (
    (),
    (OrderConfirmed,),
    (OrderConfirmed, OrderShipped),
    (OrderConfirmed, OrderShipped, OrderDelivered),
    (OrderConfirmed, OrderShipped, OrderDelivered, OrderReturned),  # returned whole
    (OrderRejected,),
    (OrderCancelled,),
    (OrderConfirmed, OrderCancelled),
)


@st.composite
def order_history(draw, order_id: str | None = None, prefix: str = "") -> list[Event]:
    """One order's events: placed, some payment/reservation updates, then one of TERMINAL_PATHS."""
    order_id = order_id or f"{prefix}o-{uuid.uuid4().hex[:12]}"
    customer = f"{prefix}c{draw(st.integers(0, 3))}"
    currency = draw(st.sampled_from(["EUR", "USD"]))
    skus = draw(st.lists(st.sampled_from([f"{prefix}SKU-{n}" for n in range(4)]), min_size=1, max_size=3))
    lines = tuple(
        OrderLine(sku=sku, quantity=draw(st.integers(1, 5)), unit_price_minor=draw(st.integers(1, 10_000)))
        for sku in skus
    )
    at = EPOCH + timedelta(minutes=draw(st.integers(0, 60 * 60)))
    kinds: list = [OrderPlaced]
    kinds += draw(st.lists(st.sampled_from([OrderPaymentUpdated, OrderLineReservationUpdated]), max_size=3))
    kinds += draw(st.sampled_from(TERMINAL_PATHS))
    events: list[Event] = []
    for version, kind in enumerate(kinds, start=1):
        common = dict(
            event_id=str(uuid.uuid4()), version=version, occurred_at=at, correlation_id=order_id,
            causation_id=str(uuid.uuid4()), order_id=order_id,
        )  # fmt: skip
        if kind is OrderPlaced:
            total = sum(line.amount_minor for line in lines)
            events.append(
                OrderPlaced(**common, customer_id=customer, currency=currency, lines=lines, total_minor=total)
            )
        elif kind is OrderPaymentUpdated:
            events.append(OrderPaymentUpdated(**common, payment_status=draw(st.sampled_from(list(PaymentStatus)))))
        elif kind is OrderLineReservationUpdated:
            status = draw(st.sampled_from(list(ReservationStatus)))
            events.append(OrderLineReservationUpdated(**common, sku=lines[0].sku, reservation_status=status))
        elif kind in (OrderRejected, OrderCancelled):
            events.append(kind(**common, reason="because"))
        elif kind is OrderShipped:
            events.append(OrderShipped(**common, carrier="DHL", tracking_number="T1"))
        elif kind is OrderReturned:
            events.append(_returned_whole(common, lines))
        else:
            events.append(kind(**common))
        at += timedelta(seconds=draw(st.integers(1, 4 * 3600)))
    return events


@st.composite
def interleaved(draw, histories: Sequence[Sequence[Event]]) -> list[Event]:
    """All events of several orders in one random interleaving that keeps each order's own order."""
    queues = [list(h) for h in histories if h]
    out: list[Event] = []
    while queues:
        index = draw(st.integers(0, len(queues) - 1))
        out.append(queues[index].pop(0))
        if not queues[index]:
            queues.pop(index)
    return out


def reference(histories: Iterable[Sequence[Event]]) -> dict[str, dict[str, list[tuple]]]:
    """Expected public rows of every view: projection -> role -> rows (tuples in table column order), sorted."""
    orders, returns = [], []
    customers: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    daily: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    statuses: Counter[str] = Counter()
    for history in histories:
        placed, last = history[0], history[-1]
        assert isinstance(placed, OrderPlaced)
        status = [STATUS_AFTER[type(e)] for e in history if type(e) in STATUS_AFTER][-1]
        payments = [e.payment_status.value for e in history if isinstance(e, OrderPaymentUpdated)]
        lines = [[line.sku, line.quantity, line.unit_price_minor] for line in placed.lines]
        timeline = [
            [e.version, e.type_name, utc_text(e.occurred_at), e.event_id,
             e.payment_status.value if isinstance(e, OrderPaymentUpdated) else None, STATUS_AFTER.get(type(e))]
            for e in history
        ]  # fmt: skip
        orders.append(
            (placed.order_id, placed.customer_id, status, placed.currency, placed.total_minor, last.version,
             payments[-1] if payments else None, utc_text(placed.occurred_at), utc_text(last.occurred_at),
             json.dumps(lines, separators=(",", ":")), json.dumps(timeline, separators=(",", ":")))
        )  # fmt: skip
        back: Counter[str] = Counter()
        for e in history:
            if isinstance(e, OrderReturned):
                for line in e.lines:
                    back[line.sku] += line.quantity
        returns += [(placed.order_id, sku, quantity) for sku, quantity in back.items()]
        entry = customers[(placed.customer_id, placed.currency)]
        entry[0] += 1
        refunded = sum(e.refund_minor for e in history if isinstance(e, OrderReturned))
        entry[1] += 0 if status in CLOSED_STATUSES else placed.total_minor - refunded
        statuses[status] += 1
        if status in BOOKED_STATUSES:
            for line in placed.lines:
                cell = daily[(utc_day(placed.occurred_at), line.sku, placed.currency)]
                cell[0] += line.quantity
                cell[1] += line.amount_minor
    return {
        "order-view": {
            "orders": sorted(orders),
            "returns": sorted(returns),
        },
        "customer-view": {"customers": sorted(k + tuple(v) for k, v in customers.items())},
        "sales-view": {
            "daily": sorted(k + tuple(v) for k, v in daily.items()),
            "statuses": sorted((s, n) for s, n in statuses.items() if n),
        },
    }


PUBLIC_ROLES = {
    "order-view": ("orders", "returns"),
    "customer-view": ("customers",),
    "sales-view": ("daily", "statuses"),
}
_AGGREGATES = {"daily", "statuses"}  # rows whose counters all fell back to zero mean "nothing": left out


def without_zero_counters(dumped: dict[str, dict[str, list[tuple]]]) -> dict[str, dict[str, list[tuple]]]:
    """Every table's rows, sorted, less the aggregate rows whose counters all fell back to zero. Such a row answers
    nothing (the sales and status queries leave it out), and whether one is left behind depends on how the events were
    cut into batches: a replay split across processes and the live projector cut them differently."""
    return {
        projection: {
            role: sorted(tuple(r) for r in rows if role not in _AGGREGATES or any(v for v in r if isinstance(v, int)))
            for role, rows in roles.items()
        }
        for projection, roles in dumped.items()
    }


def public_rows(dumped: dict[str, dict[str, list[tuple]]]) -> dict[str, dict[str, list[tuple]]]:
    """Keep only the roles `reference` computes, drop all-zero aggregate rows, sort."""
    result = {}
    for projection, roles in PUBLIC_ROLES.items():
        result[projection] = {}
        for role in roles:
            rows = [tuple(r) for r in dumped[projection][role]]
            if role in _AGGREGATES:
                rows = [r for r in rows if any(v for v in r if isinstance(v, int))]
            result[projection][role] = sorted(rows)
    return result


def random_history(rng, order_id: str, prefix: str = "") -> list[Event]:
    """One order's events like order_history, from a random.Random (for tests that want a fixed, larger log)."""

    customer = f"{prefix}c{rng.randint(0, 9)}"
    currency = rng.choice(["EUR", "USD"])
    lines = tuple(
        OrderLine(
            sku=f"{prefix}SKU-{rng.randint(0, 5)}", quantity=rng.randint(1, 5), unit_price_minor=rng.randint(1, 10_000)
        )
        for _ in range(rng.randint(1, 3))
    )
    at = EPOCH + timedelta(minutes=rng.randint(0, 3600))
    kinds = [OrderPlaced, *rng.choices([OrderPaymentUpdated, OrderLineReservationUpdated], k=rng.randint(0, 2))]
    kinds += rng.choice(TERMINAL_PATHS)
    events: list[Event] = []
    for version, kind in enumerate(kinds, start=1):
        common = dict(event_id=str(uuid.uuid4()), version=version, occurred_at=at, correlation_id=order_id,
                      causation_id=order_id, order_id=order_id)  # fmt: skip
        if kind is OrderPlaced:
            total = sum(line.amount_minor for line in lines)
            events.append(
                OrderPlaced(**common, customer_id=customer, currency=currency, lines=lines, total_minor=total)
            )
        elif kind is OrderPaymentUpdated:
            events.append(OrderPaymentUpdated(**common, payment_status=rng.choice(list(PaymentStatus))))
        elif kind is OrderLineReservationUpdated:
            events.append(
                OrderLineReservationUpdated(
                    **common, sku=lines[0].sku, reservation_status=rng.choice(list(ReservationStatus))
                )
            )
        elif kind in (OrderRejected, OrderCancelled):
            events.append(kind(**common, reason="because"))
        elif kind is OrderShipped:
            events.append(OrderShipped(**common, carrier="DHL", tracking_number="T1"))
        elif kind is OrderReturned:
            events.append(_returned_whole(common, lines))
        else:
            events.append(kind(**common))
        at += timedelta(seconds=rng.randint(1, 4 * 3600))
    return events


def _returned_whole(common: dict, lines: tuple[OrderLine, ...]) -> OrderReturned:
    return OrderReturned(
        **common,
        lines=lines,
        refund_minor=sum(line.amount_minor for line in lines),
        restock=True,
        reason="returned",
        fully_returned=True,
    )
