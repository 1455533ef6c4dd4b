"""The registry of views is built from the view modules, each of which declares everything about its view."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderstream.domain.events import OrderConfirmed, OrderLine, OrderPaymentUpdated, OrderPlaced, PaymentStatus
from orderstream.topology import INVENTORY_EVENTS, ORDERS_EVENTS, PAYMENTS_EVENTS
from orderstream.views import order_view
from orderstream.views.registry import ALL_SPECS, SPECS, VIEWS, spec_of


def test_every_view_module_declares_its_own_spec_and_the_registry_lists_them_in_order():
    assert [view.SPEC.name for view in VIEWS] == [
        "order-view",
        "customer-view",
        "sales-view",
        "stock-view",
        "payment-view",
    ]
    for view in VIEWS:
        spec = view.SPEC
        assert (spec.name, spec.schema_version, spec.state_role) == (view.NAME, view.SCHEMA_VERSION, view.STATE_ROLE)
        assert spec.project is view.project and spec.tables is view.tables
        assert spec.state_role in spec.tables(1)
        assert spec.replay_scope is not None and set(spec.replay_scope.keyed) <= set(spec.tables(1))
    assert list(ALL_SPECS) == [view.NAME for view in VIEWS]
    assert list(SPECS) == ["order-view", "customer-view", "sales-view"]  # the views of orders.events alone
    assert {spec.topics for spec in ALL_SPECS.values()} == {(ORDERS_EVENTS,), (INVENTORY_EVENTS,), (PAYMENTS_EVENTS,)}


def test_table_names_are_per_view_and_per_generation():
    names = {name: sorted(t.name for t in spec.tables(7).values()) for name, spec in ALL_SPECS.items()}
    assert names == {
        "order-view": [
            "order_view_orders_g7",
            "order_view_returns_g7",
        ],
        "customer-view": ["customer_view_customers_g7", "customer_view_orders_g7"],
        "sales-view": ["sales_view_daily_g7", "sales_view_orders_g7", "sales_view_statuses_g7"],
        "stock-view": ["stock_view_skus_g7"],
        "payment-view": ["payment_view_customers_g7", "payment_view_orders_g7"],
    }


def test_an_unknown_view_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown projection 'nope'; choose from: order-view, customer-view"):
        spec_of("nope")


def test_the_timeline_fold_reads_the_type_names_the_fold_writes():
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    common = {"occurred_at": at, "correlation_id": "o1", "causation_id": "c", "order_id": "o1"}
    events = [
        OrderPlaced(
            event_id="e1", version=1, customer_id="alice", currency="EUR", total_minor=500,
            lines=(OrderLine(sku="A", quantity=1, unit_price_minor=500),), **common,
        ),
        OrderConfirmed(event_id="e2", version=2, **common),
        OrderPaymentUpdated(event_id="e3", version=3, payment_status=PaymentStatus.AUTHORIZED, **common),
    ]  # fmt: skip
    changes = order_view.project(events, {})
    ((row),) = changes.upserts["orders"].values()
    timeline = order_view.timeline_of(row["timeline"])
    lines = order_view.lines_of(row["lines"])
    assert lines == [{"sku": "A", "quantity": 1, "unit_price_minor": 500}]
    folded = order_view.fold_timeline(row, lines, timeline, "9999")
    assert {k: folded[k] for k in ("status", "payment_status", "version")} == {
        "status": row["status"],
        "payment_status": row["payment_status"],
        "version": row["version"],
    }
