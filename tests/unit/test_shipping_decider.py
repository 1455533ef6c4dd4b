"""The shipment decider: every (shipment status, message) pair, and properties over random message sequences."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderstream.domain import shipping
from orderstream.domain.commands import ConfirmDelivery, DispatchShipment
from orderstream.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPaymentUpdated,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
    PaymentStatus,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentPending,
)
from orderstream.domain.order import Rejection, RejectionCode
from orderstream.domain.shipping import Context, ShipmentStatus, decide, evolve, initial_state

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OID = "o-1"
_meta = dict(occurred_at=T0, correlation_id=OID, causation_id="x")

PLACED = OrderPlaced(
    event_id="e1",
    version=1,
    order_id=OID,
    customer_id="cust-1",
    currency="EUR",
    lines=(OrderLine(sku="A", quantity=1, unit_price_minor=100),),
    total_minor=100,
    **_meta,
)
CONFIRMED = OrderConfirmed(event_id="e4", version=4, order_id=OID, **_meta)
REJECTED = OrderRejected(event_id="e3", version=3, order_id=OID, reason="payment declined", **_meta)
CANCELLED = OrderCancelled(event_id="e5", version=5, order_id=OID, reason="changed my mind", **_meta)
SHIPPED = OrderShipped(event_id="e6", version=6, order_id=OID, carrier="DHL", tracking_number="T-1", **_meta)
DELIVERED = OrderDelivered(event_id="e7", version=7, order_id=OID, **_meta)
PAYMENT = OrderPaymentUpdated(event_id="e2", version=2, order_id=OID, payment_status=PaymentStatus.AUTHORIZED, **_meta)


def dispatch(command_id: str = "c-ship", carrier: str = "DHL", tracking: str = "T-1") -> DispatchShipment:
    return DispatchShipment(
        command_id=command_id, issued_at=T0, correlation_id=OID, order_id=OID, carrier=carrier, tracking_number=tracking
    )


def deliver(command_id: str = "c-deliver") -> ConfirmDelivery:
    return ConfirmDelivery(command_id=command_id, issued_at=T0, correlation_id=OID, order_id=OID)


def run(*messages) -> shipping.ShipmentState:
    """The state after deciding (and evolving) each message in turn; rejections change nothing."""
    state = initial_state(OID)
    for message in messages:
        decision = decide(message, state, Context.of(message, T0))
        if not isinstance(decision, Rejection):
            for event in decision:
                state = evolve(state, event)
    return state


STATES = {
    None: (),
    ShipmentStatus.PENDING: (PLACED,),
    ShipmentStatus.CREATED: (PLACED, CONFIRMED),
    ShipmentStatus.DISPATCHED: (PLACED, CONFIRMED, SHIPPED),
    ShipmentStatus.DELIVERED: (PLACED, CONFIRMED, SHIPPED, DELIVERED),
    ShipmentStatus.CANCELLED: (PLACED, CONFIRMED, CANCELLED),
}


def test_the_states_are_what_their_histories_say():
    for status, history in STATES.items():
        assert run(*history).status is status


# (status, message) -> the event type produced, () for nothing, or a substring of the rejection reason
TABLE = [
    (None, PLACED, ShipmentPending),
    (ShipmentStatus.PENDING, PLACED, ()),
    (ShipmentStatus.PENDING, CONFIRMED, ShipmentCreated),
    (ShipmentStatus.PENDING, REJECTED, ShipmentCancelled),
    (ShipmentStatus.PENDING, CANCELLED, ShipmentCancelled),
    (ShipmentStatus.PENDING, PAYMENT, ()),
    (ShipmentStatus.CREATED, CONFIRMED, ()),
    (ShipmentStatus.CREATED, CANCELLED, ShipmentCancelled),
    (ShipmentStatus.DISPATCHED, CANCELLED, ()),
    (ShipmentStatus.DELIVERED, CANCELLED, ()),
    (ShipmentStatus.CANCELLED, CANCELLED, ()),
    # the order decided the dispatch (OrderShipped) and the delivery (OrderDelivered): the shipment carries them out
    (None, SHIPPED, "no shipment (no such order)"),
    (ShipmentStatus.PENDING, SHIPPED, ShipmentDispatched),
    (ShipmentStatus.CREATED, SHIPPED, ShipmentDispatched),
    (ShipmentStatus.DISPATCHED, SHIPPED, ()),
    (ShipmentStatus.DELIVERED, SHIPPED, ()),
    (ShipmentStatus.CANCELLED, SHIPPED, "was cancelled (order cancelled: changed my mind)"),
    (None, DELIVERED, "no shipment (no such order)"),
    (ShipmentStatus.PENDING, DELIVERED, "is not confirmed yet"),
    (ShipmentStatus.CREATED, DELIVERED, "has not been dispatched yet"),
    (ShipmentStatus.DISPATCHED, DELIVERED, ShipmentDelivered),
    (ShipmentStatus.DELIVERED, DELIVERED, ()),
    (ShipmentStatus.CANCELLED, DELIVERED, "was cancelled"),
    # the shipping service no longer decides a dispatch on its own: that is the order's single writer's call
    (ShipmentStatus.CREATED, dispatch(), "decided by the order service now"),
    (ShipmentStatus.DISPATCHED, deliver(), "decided by the order service now"),
]


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    TABLE,
    ids=[f"{s.value if s else 'none'}-{type(m).__name__}" for s, m, _ in TABLE],
)
def test_each_status_and_message(status, message, expected):
    state = run(*STATES[status])

    decision = decide(message, state, Context.of(message, T0))

    if isinstance(expected, str):
        assert isinstance(decision, Rejection), decision
        assert expected in decision.reason and decision.current_version == state.version
    elif expected == ():
        assert decision == ()
    else:
        (event,) = decision
        assert type(event) is expected
        assert (event.order_id, event.version, event.correlation_id) == (OID, state.version + 1, OID)
        cause = message.command_id if hasattr(message, "command_id") else message.event_id
        assert event.causation_id == cause
        assert decide(message, state, Context.of(message, T0)) == decision, "deterministic"


def test_the_created_shipment_names_the_customer_of_the_placed_order():
    (event,) = decide(CONFIRMED, run(PLACED), Context.of(CONFIRMED, T0))
    assert event.customer_id == "cust-1"


def test_a_dispatched_shipment_carries_the_orders_carrier_and_tracking():
    (event,) = decide(SHIPPED, run(PLACED, CONFIRMED), Context.of(SHIPPED, T0))
    assert (event.carrier, event.tracking_number) == ("DHL", "T-1")


@pytest.mark.parametrize("command", [dispatch(), deliver()])
def test_the_old_shipping_commands_are_refused_as_invalid_naming_the_order_service(command):
    decision = decide(command, run(PLACED, CONFIRMED), Context.of(command, T0))
    assert isinstance(decision, Rejection) and decision.code is RejectionCode.INVALID
    assert "orders.commands" in decision.reason


def test_evolve_refuses_a_gap_or_another_orders_event():
    state = run(PLACED)
    with pytest.raises(shipping.EvolveError, match="version"):
        evolve(state, ShipmentDelivered(event_id="x", version=5, order_id=OID, **_meta))
    with pytest.raises(shipping.EvolveError, match="belongs"):
        evolve(state, ShipmentDelivered(event_id="x", version=2, order_id="o-2", **_meta))


_messages = st.sampled_from(
    [PLACED, CONFIRMED, REJECTED, CANCELLED, PAYMENT, SHIPPED, DELIVERED, dispatch(), deliver()]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages, max_size=12))
def test_a_shipment_never_moves_backwards_nor_is_cancelled_once_dispatched(messages):
    order = [None, ShipmentStatus.PENDING, ShipmentStatus.CREATED, ShipmentStatus.DISPATCHED, ShipmentStatus.DELIVERED]
    state = initial_state(OID)
    for message in messages:
        before = state
        decision = decide(message, state, Context.of(message, T0))
        if isinstance(decision, Rejection):
            continue
        for event in decision:
            state = evolve(state, event)
        if state.status is ShipmentStatus.CANCELLED:
            assert before.status in (ShipmentStatus.PENDING, ShipmentStatus.CANCELLED, ShipmentStatus.CREATED)
        elif before.status is not ShipmentStatus.CANCELLED:
            assert order.index(state.status) >= order.index(before.status)
        else:
            assert state == before, "a cancelled shipment stays cancelled"
