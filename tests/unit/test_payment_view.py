"""The payment view's pure fold: per order and per customer, authorized, captured, refunded and voided money."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderstream.domain.events import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
)
from orderstream.views.base import ProjectionError
from orderstream.views.payment_view import project

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _event(kind, order_id: str, version: int, amount: int, **extra):
    return kind(
        event_id=f"{order_id}-{version}",
        version=version,
        occurred_at=T0,
        correlation_id=order_id,
        causation_id="c",
        order_id=order_id,
        customer_id="alice",
        amount_minor=amount,
        currency="EUR",
        **extra,
    )


def fold(*batches):
    """Apply batches like the store: upserts replace the state row, increments add to the customer's sums."""
    orders: dict = {}
    customers: dict = {}
    for batch in batches:
        current = {e.order_id: orders[e.order_id] for e in batch if e.order_id in orders}
        changes = project(batch, current)
        for (order_id,), row in changes.upserts["orders"].items():
            orders[order_id] = row
        for key, deltas in changes.increments.get("customers", {}).items():
            row = customers.setdefault(key, {})
            for column, delta in deltas.items():
                row[column] = row.get(column, 0) + delta
    return orders, customers


def test_authorize_capture_and_partial_refunds_in_any_batching_add_up_per_order_and_customer():
    events = [
        _event(PaymentAuthorized, "o1", 1, 1000),
        _event(PaymentAuthorized, "o2", 2, 500),
        _event(PaymentCaptured, "o1", 3, 1000),
        _event(PaymentVoided, "o2", 4, 500, reason="cancelled"),
        _event(PaymentRefunded, "o1", 5, 300, reason="returned"),
        _event(PaymentDeclined, "o3", 6, 9000, reason="over the limit"),
    ]
    whole = fold(events)
    one_by_one = fold(*([e] for e in events))
    assert whole == one_by_one
    orders, customers = whole
    o1 = orders["o1"]
    assert (o1["authorized_minor"], o1["captured_minor"], o1["refunded_minor"], o1["status"]) == (
        1000,
        1000,
        300,
        "PARTIALLY_REFUNDED",
    )
    assert (orders["o2"]["voided_minor"], orders["o2"]["status"]) == (500, "VOIDED")
    assert (orders["o3"]["authorized_minor"], orders["o3"]["status"]) == (0, "DECLINED")
    assert customers[("alice", "EUR")] == {
        "authorized_minor": 1500,
        "captured_minor": 1000,
        "refunded_minor": 300,
        "voided_minor": 500,
    }


def test_a_refund_of_a_payment_never_captured_was_a_release_and_counts_as_voided():
    orders, _ = fold([_event(PaymentAuthorized, "o1", 1, 700), _event(PaymentRefunded, "o1", 2, 700, reason="old")])
    assert (orders["o1"]["refunded_minor"], orders["o1"]["voided_minor"], orders["o1"]["status"]) == (0, 700, "VOIDED")


def test_a_duplicate_or_a_foreign_event_stops_the_fold():
    authorized = _event(PaymentAuthorized, "o1", 3, 700)
    with pytest.raises(ProjectionError, match="duplicate"):
        fold([authorized], [authorized])
    from orderstream.domain.events import OrderDelivered

    delivered = OrderDelivered(
        event_id="x", version=1, occurred_at=T0, correlation_id="o", causation_id="c", order_id="o"
    )
    with pytest.raises(ProjectionError, match="not a payment event"):
        fold([delivered])


def test_the_store_takes_payment_versions_with_gaps_but_leaves_out_repeats():
    from orderstream.views.base import follow_versions
    from orderstream.views.payment_view import SPEC

    authorized, captured = _event(PaymentAuthorized, "o1", 3, 700), _event(PaymentCaptured, "o1", 9, 700)
    assert SPEC.version_gaps is True
    assert follow_versions([authorized, captured], {}, gaps=True) == [authorized, captured]
    assert follow_versions([captured], {"o1": {"version": 9}}, gaps=True) == [], "a repeat is left out"
    with pytest.raises(ProjectionError, match="a version is missing"):
        follow_versions([authorized, captured], {})
