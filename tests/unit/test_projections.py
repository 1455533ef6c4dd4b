"""The pure projection functions, batch by batch, against an independent reference fold (no Kafka, no SQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderstream.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
)
from orderstream.views.base import ProjectionError, RowChanges
from orderstream.views.registry import SPECS
from tests.support.histories import interleaved, order_history, public_rows, reference


class MemoryTables:
    """Applies RowChanges the way the SQL store does: upserts replace a row, increments add to it."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[tuple, dict]]] = {name: {} for name in SPECS}

    def apply(self, projection: str, events) -> None:
        spec = SPECS[projection]
        tables = self.tables[projection]
        state = tables.setdefault(spec.state_role, {})
        current = {e.order_id: state[(e.order_id,)] for e in events if (e.order_id,) in state}
        changes: RowChanges = spec.project(events, current)
        for role, rows in changes.upserts.items():
            tables.setdefault(role, {}).update({k: dict(v) for k, v in rows.items()})
        for role, rows in changes.increments.items():
            table = tables.setdefault(role, {})
            for key, deltas in rows.items():
                row = table.setdefault(key, dict.fromkeys(deltas, 0))
                for column, delta in deltas.items():
                    row[column] = row.get(column, 0) + delta

    def dump(self) -> dict[str, dict[str, list[tuple]]]:
        out = {}
        for projection, spec in SPECS.items():
            columns = {role: [c.name for c in t.columns] for role, t in spec.tables(1).items()}
            out[projection] = {}
            for role, names in columns.items():
                pk = [c.name for c in spec.tables(1)[role].primary_key.columns]
                rows = self.tables[projection].get(role, {})
                out[projection][role] = [
                    tuple(({**dict(zip(pk, key, strict=True)), **row})[n] for n in names) for key, row in rows.items()
                ]
        return out


@st.composite
def batched_histories(draw):
    histories = [draw(order_history(order_id=f"o{n}")) for n in range(draw(st.integers(1, 8)))]
    log = draw(interleaved(histories))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(log) - 1)), max_size=6, unique=True)))
    batches = [log[a:b] for a, b in pairwise([0, *cuts, len(log)]) if log[a:b]]
    return histories, batches


@settings(max_examples=300, deadline=None)
@given(batched_histories())
def test_batches_fold_to_the_reference(case):
    histories, batches = case
    memory = MemoryTables()
    for batch in batches:
        for projection in SPECS:
            memory.apply(projection, batch)
    assert public_rows(memory.dump()) == reference(histories)


def _placed(order_id="o1", version=1, **kw):
    lines = kw.pop("lines", (OrderLine(sku="A", quantity=2, unit_price_minor=500),))
    return OrderPlaced(
        event_id=f"{order_id}-{version}", version=version,
        occurred_at=kw.pop("at", datetime(2024, 5, 1, 23, 59, tzinfo=UTC)),
        correlation_id=order_id, causation_id="c", order_id=order_id, customer_id="alice", currency="EUR",
        lines=lines, total_minor=sum(line.amount_minor for line in lines),
    )  # fmt: skip


def _next(kind, order_id="o1", version=2, **kw):
    return kind(
        event_id=f"{order_id}-{version}", version=version, occurred_at=datetime(2024, 5, 2, 8, tzinfo=UTC),
        correlation_id=order_id, causation_id="c", order_id=order_id, **kw,
    )  # fmt: skip


def _sales(events):
    memory = MemoryTables()
    memory.apply("sales-view", events)
    return public_rows(memory.dump())["sales-view"]


def test_sales_count_an_order_once_shipped_captured_on_the_day_it_was_placed():
    assert _sales([_placed()])["daily"] == []
    assert _sales([_placed(), _next(OrderConfirmed)])["daily"] == [], "authorized, not captured"
    shipped = _sales(
        [_placed(), _next(OrderConfirmed), _next(OrderShipped, version=3, carrier="x", tracking_number="y")]
    )
    assert shipped["daily"] == [("2024-05-01", "A", "EUR", 2, 1000)]
    assert shipped["statuses"] == [("SHIPPED", 1)]


def test_sales_and_lifetime_value_take_back_what_a_return_refunded():
    lines = (OrderLine(sku="A", quantity=2, unit_price_minor=500), OrderLine(sku="B", quantity=1, unit_price_minor=70))
    history = [
        _placed(lines=lines),
        _next(OrderConfirmed),
        _next(OrderShipped, version=3, carrier="x", tracking_number="y"),
        _next(OrderDelivered, version=4),
        _next(
            OrderReturned,
            version=5,
            lines=(OrderLine(sku="A", quantity=1, unit_price_minor=500),),
            refund_minor=500,
            restock=True,
            reason="too big",
            fully_returned=False,
        ),
    ]
    sales = _sales(history)
    assert sales["daily"] == [("2024-05-01", "A", "EUR", 1, 500), ("2024-05-01", "B", "EUR", 1, 70)]
    assert sales["statuses"] == [("PARTIALLY_RETURNED", 1)]
    memory = MemoryTables()
    memory.apply("customer-view", history)
    assert public_rows(memory.dump())["customer-view"]["customers"] == [("alice", "EUR", 1, 570)]
    memory.apply("order-view", history)
    returns = memory.tables["order-view"]["returns"]
    assert returns == {("o1", "A"): {"returned_quantity": 1}}
    assert memory.tables["order-view"]["orders"][("o1",)]["status"] == "PARTIALLY_RETURNED"


def test_sales_take_back_an_order_cancelled_after_confirmation_and_never_count_a_rejected_one():
    cancelled = _sales([_placed(), _next(OrderConfirmed), _next(OrderCancelled, version=3, reason="changed mind")])
    assert cancelled["daily"] == []
    assert cancelled["statuses"] == [("CANCELLED", 1)]
    assert _sales([_placed(), _next(OrderRejected, reason="no stock")])["daily"] == []


def test_customer_lifetime_value_leaves_out_rejected_and_cancelled_orders():
    memory = MemoryTables()
    memory.apply("customer-view", [_placed("o1"), _placed("o2"), _next(OrderCancelled, "o2", reason="r")])
    assert public_rows(memory.dump())["customer-view"]["customers"] == [("alice", "EUR", 2, 1000)]


@pytest.mark.parametrize("projection", list(SPECS))
def test_an_event_out_of_order_or_for_an_unknown_order_stops_the_projection(projection):
    spec = SPECS[projection]
    with pytest.raises(ProjectionError, match="never placed"):
        spec.project([_next(OrderConfirmed)], {})
    with pytest.raises(ProjectionError, match="duplicate or out-of-order"):
        spec.project([_placed(), _next(OrderConfirmed), _next(OrderConfirmed)], {})
    with pytest.raises(ProjectionError, match="placed twice"):
        spec.project([_placed(), _placed()], {})
