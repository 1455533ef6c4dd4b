"""The Order decider: every (state, message) pair of the lifecycle, plus properties over random message sequences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderstream.domain import order
from orderstream.domain.commands import CancelOrder, DeliverOrder, PlaceOrder, ReturnItem, ReturnOrder, ShipOrder
from orderstream.domain.events import (
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
    PaymentAuthorized,
    PaymentDeclined,
    PaymentStatus,
    ReservationStatus,
    ShipmentDelivered,
    ShipmentDispatched,
    StockReleased,
    StockReservationRejected,
    StockReserved,
)
from orderstream.domain.order import Context, OrderStatus, Rejection, RejectionCode, decide, evolve, fold

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OID = "o-1"
LINES = (OrderLine(sku="A", quantity=2, unit_price_minor=150), OrderLine(sku="B", quantity=1, unit_price_minor=1000))


def place(command_id: str = "c-place", **changes) -> PlaceOrder:
    fields = dict(
        command_id=command_id,
        issued_at=T0,
        correlation_id=OID,
        order_id=OID,
        customer_id="cust-1",
        currency="EUR",
        lines=LINES,
        channel="cli",
    )
    return PlaceOrder(**(fields | changes))


def cancel(
    command_id: str = "c-cancel", expected_version: int | None = None, reason: str = "changed my mind"
) -> CancelOrder:
    return CancelOrder(
        command_id=command_id,
        issued_at=T0,
        correlation_id=OID,
        order_id=OID,
        reason=reason,
        expected_version=expected_version,
    )


_meta = dict(version=1, occurred_at=T0, correlation_id=OID, causation_id="x")


def authorized(event_id: str = "pay-1") -> PaymentAuthorized:
    return PaymentAuthorized(
        event_id=event_id, order_id=OID, customer_id="cust-1", amount_minor=1300, currency="EUR", **_meta
    )


def declined(event_id: str = "pay-2") -> PaymentDeclined:
    return PaymentDeclined(
        event_id=event_id,
        order_id=OID,
        customer_id="cust-1",
        amount_minor=1300,
        currency="EUR",
        reason="insufficient funds",
        **_meta,
    )


def reserved(sku: str, event_id: str | None = None) -> StockReserved:
    return StockReserved(
        event_id=event_id or f"res-{sku}", sku=sku, order_id=OID, quantity=1, on_hand=9, reserved=1, **_meta
    )


def reservation_rejected(sku: str) -> StockReservationRejected:
    return StockReservationRejected(
        event_id=f"rej-{sku}", sku=sku, order_id=OID, quantity=1, available=0, reason="out of stock", **_meta
    )


def released(sku: str) -> StockReleased:
    return StockReleased(event_id=f"rel-{sku}", sku=sku, order_id=OID, quantity=1, on_hand=10, reserved=0, **_meta)


def dispatched() -> ShipmentDispatched:
    return ShipmentDispatched(event_id="ship-1", order_id=OID, carrier="DHL", tracking_number="T1", **_meta)


def delivered() -> ShipmentDelivered:
    return ShipmentDelivered(event_id="ship-2", order_id=OID, **_meta)


def ship(command_id: str = "c-ship", expected_version: int | None = None) -> ShipOrder:
    return ShipOrder(
        command_id=command_id,
        issued_at=T0,
        correlation_id=OID,
        order_id=OID,
        carrier="DHL",
        tracking_number="T1",
        expected_version=expected_version,
    )


def deliver(command_id: str = "c-deliver") -> DeliverOrder:
    return DeliverOrder(command_id=command_id, issued_at=T0, correlation_id=OID, order_id=OID)


def return_order(*items: tuple[str, int], command_id: str = "c-return", restock: bool = True) -> ReturnOrder:
    return ReturnOrder(
        command_id=command_id,
        issued_at=T0,
        correlation_id=OID,
        order_id=OID,
        items=tuple(ReturnItem(sku=sku, quantity=quantity) for sku, quantity in items),
        reason="too small",
        restock=restock,
    )


def run(state: order.OrderState, *messages) -> order.OrderState:
    """Apply messages that must all be accepted."""
    for message in messages:
        decision = decide(message, state, Context.of(message, T0))
        assert not isinstance(decision, Rejection), decision
        state = fold(state, decision)
    return state


NEW = order.initial_state(OID)
PLACED = run(NEW, place())
CONFIRMED = run(PLACED, authorized(), reserved("A"), reserved("B"))
SHIPPED = run(CONFIRMED, ship())
DELIVERED = run(SHIPPED, deliver())
REJECTED = run(PLACED, declined())
CANCELLED = run(PLACED, cancel())
PARTIALLY_RETURNED = run(DELIVERED, return_order(("A", 1)))
RETURNED = run(DELIVERED, return_order())
STATES = {
    "new": NEW,
    "placed": PLACED,
    "confirmed": CONFIRMED,
    "shipped": SHIPPED,
    "delivered": DELIVERED,
    "rejected": REJECTED,
    "cancelled": CANCELLED,
    "partially_returned": PARTIALLY_RETURNED,
    "returned": RETURNED,
}


def test_the_lifecycle_states_are_what_their_names_say():
    assert [STATES[n].status for n in STATES] == [None, *OrderStatus]
    assert PLACED.version == 1 and PLACED.total_minor == 1300 and PLACED.payment is PaymentStatus.PENDING
    assert CONFIRMED.version == 5 and CONFIRMED.fully_reserved
    assert DELIVERED.version == 7


# state x command: the expected event types, or the rejection code
TABLE = {
    ("new", "place"): [OrderPlaced],
    ("new", "cancel"): RejectionCode.NOT_FOUND,
    ("new", "dispatched"): RejectionCode.ILLEGAL_TRANSITION,
    ("new", "delivered"): RejectionCode.ILLEGAL_TRANSITION,
    ("new", "authorized"): RejectionCode.NOT_FOUND,
    ("new", "reserved"): RejectionCode.NOT_FOUND,
    ("placed", "place"): RejectionCode.ALREADY_EXISTS,
    ("placed", "cancel"): [OrderCancelled],
    ("placed", "dispatched"): RejectionCode.ILLEGAL_TRANSITION,
    ("placed", "delivered"): RejectionCode.ILLEGAL_TRANSITION,
    ("placed", "authorized"): [OrderPaymentUpdated],
    ("placed", "reserved"): [OrderLineReservationUpdated],
    ("confirmed", "place"): RejectionCode.ALREADY_EXISTS,
    ("confirmed", "cancel"): [OrderCancelled],
    ("confirmed", "dispatched"): [OrderShipped],
    ("confirmed", "delivered"): RejectionCode.ILLEGAL_TRANSITION,
    ("confirmed", "authorized"): [],
    ("confirmed", "reserved"): [],
    ("shipped", "place"): RejectionCode.ALREADY_EXISTS,
    ("shipped", "cancel"): RejectionCode.ILLEGAL_TRANSITION,
    ("shipped", "dispatched"): [],
    ("shipped", "delivered"): [OrderDelivered],
    ("shipped", "authorized"): [],
    ("shipped", "reserved"): [],
    ("delivered", "place"): RejectionCode.ALREADY_EXISTS,
    ("delivered", "cancel"): RejectionCode.ILLEGAL_TRANSITION,
    ("delivered", "dispatched"): [],
    ("delivered", "delivered"): [],
    ("delivered", "authorized"): [],
    ("delivered", "reserved"): [],
    ("rejected", "place"): RejectionCode.ALREADY_EXISTS,
    ("rejected", "cancel"): RejectionCode.ILLEGAL_TRANSITION,
    ("rejected", "dispatched"): RejectionCode.ILLEGAL_TRANSITION,
    ("rejected", "delivered"): RejectionCode.ILLEGAL_TRANSITION,
    ("rejected", "authorized"): [OrderPaymentUpdated],  # recorded: the payment must be voided
    ("rejected", "reserved"): [OrderLineReservationUpdated],  # recorded: the stock must be released
    ("cancelled", "place"): RejectionCode.ALREADY_EXISTS,
    ("cancelled", "cancel"): RejectionCode.ILLEGAL_TRANSITION,
    ("cancelled", "dispatched"): RejectionCode.ILLEGAL_TRANSITION,
    ("cancelled", "delivered"): RejectionCode.ILLEGAL_TRANSITION,
    ("cancelled", "authorized"): [OrderPaymentUpdated],
    ("cancelled", "reserved"): [OrderLineReservationUpdated],
}
for _ended in ("partially_returned", "returned"):
    TABLE |= {
        (_ended, "place"): RejectionCode.ALREADY_EXISTS,
        (_ended, "cancel"): RejectionCode.ILLEGAL_TRANSITION,
        (_ended, "dispatched"): [],
        (_ended, "delivered"): [],
        (_ended, "authorized"): [],
        (_ended, "reserved"): [],
    }
# the commands the order decides since it owns its dispatch: ship, deliver and return
for _state in STATES:
    _missing = RejectionCode.NOT_FOUND if _state == "new" else RejectionCode.ILLEGAL_TRANSITION
    TABLE[(_state, "ship")] = [OrderShipped] if _state == "confirmed" else _missing
    TABLE[(_state, "deliver")] = [OrderDelivered] if _state == "shipped" else _missing
    TABLE[(_state, "return")] = [OrderReturned] if _state in ("delivered", "partially_returned") else _missing
    TABLE[(_state, "return_a")] = [OrderReturned] if _state in ("delivered", "partially_returned") else _missing
MESSAGES = {
    "place": place,
    "cancel": cancel,
    "dispatched": dispatched,
    "delivered": delivered,
    "authorized": authorized,
    "reserved": lambda: reserved("A"),
    "ship": ship,
    "deliver": deliver,
    "return": return_order,
    "return_a": lambda: return_order(("A", 1)),
}


@pytest.mark.parametrize(("state_name", "message_name"), sorted(TABLE))
def test_state_by_message_table(state_name, message_name):
    state, message = STATES[state_name], MESSAGES[message_name]()
    decision = decide(message, state, Context.of(message, T0))
    expected = TABLE[(state_name, message_name)]
    if isinstance(expected, RejectionCode):
        assert isinstance(decision, Rejection) and decision.code is expected, decision
        assert decision.current_version == state.version
    else:
        assert [type(e) for e in decision] == expected
        assert [e.version for e in decision] == list(range(state.version + 1, state.version + 1 + len(decision)))


def test_the_table_covers_every_state_and_message():
    assert set(TABLE) == {(s, m) for s in STATES for m in MESSAGES}


def test_events_carry_the_callers_metadata_and_derived_ids():
    context = Context(occurred_at=T0, correlation_id="corr", causation_id="c-place")
    (placed,) = decide(place(), NEW, context)
    assert (placed.occurred_at, placed.correlation_id, placed.causation_id) == (T0, "corr", "c-place")
    assert placed.event_id == context.event_id(OID, 1)
    assert decide(place(), NEW, context) == (placed,)  # deterministic: no clock, no random inside
    assert (
        decide(place(command_id="other"), NEW, Context.of(place(command_id="other"), T0))[0].event_id != placed.event_id
    )


def test_placed_event_totals_the_lines():
    (placed,) = decide(place(), NEW, Context.of(place(), T0))
    assert placed.total_minor == 2 * 150 + 1000 and placed.lines == LINES and placed.channel == "cli"


def test_confirmed_only_when_payment_authorized_and_every_line_reserved():
    state = run(PLACED, reserved("A"), authorized())
    assert state.status is OrderStatus.PLACED
    decision = decide(reserved("B"), state, Context.of(reserved("B"), T0))
    assert [type(e) for e in decision] == [OrderLineReservationUpdated, OrderConfirmed]
    other_order = run(PLACED, reserved("A"), reserved("B"))
    decision = decide(authorized(), other_order, Context.of(authorized(), T0))
    assert [type(e) for e in decision] == [OrderPaymentUpdated, OrderConfirmed]


def test_payment_declined_or_stock_rejected_rejects_a_placed_order():
    decision = decide(declined(), PLACED, Context.of(declined(), T0))
    assert [type(e) for e in decision] == [OrderPaymentUpdated, OrderRejected]
    assert "insufficient funds" in decision[1].reason
    decision = decide(reservation_rejected("B"), PLACED, Context.of(reservation_rejected("B"), T0))
    assert [type(e) for e in decision] == [OrderLineReservationUpdated, OrderRejected]
    assert fold(PLACED, decision).status is OrderStatus.REJECTED


def test_reservations_for_unknown_lines_are_rejected_and_releases_recorded():
    assert decide(reserved("Z"), PLACED, Context.of(reserved("Z"), T0)).code is RejectionCode.INVALID
    state = run(CANCELLED, reserved("A"), released("A"))
    assert state.reservation_of("A") is ReservationStatus.RELEASED and state.status is OrderStatus.CANCELLED


def test_expected_version_conflict_reports_the_current_version():
    rejection = decide(cancel(expected_version=0), PLACED, Context.of(cancel(), T0))
    assert rejection.code is RejectionCode.VERSION_CONFLICT and rejection.current_version == 1
    assert "version conflict" in rejection.reason
    assert [type(e) for e in decide(cancel(expected_version=1), PLACED, Context.of(cancel(), T0))] == [OrderCancelled]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (dict(lines=()), "at least one line"),
        (dict(currency="XXX"), "ISO 4217"),
        (dict(customer_id=""), "customer id must not be empty"),
        (dict(order_id="bad id"), "order id"),
        (dict(lines=(OrderLine(sku="A", quantity=0, unit_price_minor=1),)), "greater than 0"),
        (dict(lines=(OrderLine(sku="A", quantity=10_001, unit_price_minor=1),)), "limit per line"),
        (dict(lines=(OrderLine(sku="A", quantity=1, unit_price_minor=-1),)), "0 or more"),
        (dict(lines=(OrderLine(sku="A", quantity=1, unit_price_minor=1),) * 2), "two lines"),
        (dict(lines=tuple(OrderLine(sku=f"S{i}", quantity=1, unit_price_minor=1) for i in range(51))), "at most 50"),
    ],
)
def test_invalid_place_orders_are_rejected_with_the_rule(changes, fragment):
    rejection = decide(place(**changes), NEW, Context.of(place(), T0))
    assert isinstance(rejection, Rejection) and rejection.code is RejectionCode.INVALID
    assert fragment in rejection.reason


def test_a_too_long_cancel_reason_is_invalid():
    assert decide(cancel(reason="x" * 501), PLACED, Context.of(cancel(), T0)).code is RejectionCode.INVALID


def test_evolve_refuses_events_out_of_sequence():
    (placed,) = decide(place(), NEW, Context.of(place(), T0))
    with pytest.raises(order.EvolveError):
        evolve(NEW, replace(placed, version=2))
    with pytest.raises(order.EvolveError):
        evolve(order.initial_state("other"), placed)


# --- properties over random message sequences ---------------------------------------------------------------------

message_strategy = st.one_of(
    st.builds(lambda i: place(command_id=f"p{i}"), st.integers(0, 3)),
    st.builds(
        lambda i, v: cancel(command_id=f"c{i}", expected_version=v), st.integers(0, 3), st.none() | st.integers(0, 8)
    ),
    st.just(authorized()),
    st.just(declined()),
    st.sampled_from(["A", "B", "Z"]).map(reserved),
    st.sampled_from(["A", "B"]).map(reservation_rejected),
    st.sampled_from(["A", "B"]).map(released),
    st.just(dispatched()),
    st.just(delivered()),
    st.builds(
        lambda i, v: ship(command_id=f"s{i}", expected_version=v), st.integers(0, 3), st.none() | st.integers(5, 6)
    ),
    st.builds(lambda i: deliver(command_id=f"d{i}"), st.integers(0, 3)),
    st.builds(
        lambda i, items: return_order(*items, command_id=f"r{i}"),
        st.integers(0, 3),
        st.lists(st.tuples(st.sampled_from(["A", "B", "Z"]), st.integers(1, 3)), max_size=2, unique_by=lambda t: t[0]),
    ),
)

ALLOWED = {
    None: {OrderStatus.PLACED, None},
    OrderStatus.PLACED: {OrderStatus.PLACED, OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.CANCELLED},
    OrderStatus.CONFIRMED: {OrderStatus.CONFIRMED, OrderStatus.SHIPPED, OrderStatus.CANCELLED},
    OrderStatus.SHIPPED: {OrderStatus.SHIPPED, OrderStatus.DELIVERED},
    OrderStatus.DELIVERED: {OrderStatus.DELIVERED, OrderStatus.PARTIALLY_RETURNED, OrderStatus.RETURNED},
    OrderStatus.REJECTED: {OrderStatus.REJECTED},
    OrderStatus.CANCELLED: {OrderStatus.CANCELLED},
    OrderStatus.PARTIALLY_RETURNED: {OrderStatus.PARTIALLY_RETURNED, OrderStatus.RETURNED},
    OrderStatus.RETURNED: {OrderStatus.RETURNED},
}


@settings(max_examples=300, deadline=None)
@given(st.lists(message_strategy, max_size=25))
def test_any_message_sequence_keeps_the_stream_and_lifecycle_sound(messages):
    state = NEW
    for message in messages:
        decision = decide(message, state, Context.of(message, T0))
        if isinstance(decision, Rejection):
            assert decision.current_version == state.version and decision.reason
            continue
        assert [e.version for e in decision] == list(range(state.version + 1, state.version + 1 + len(decision)))
        assert all(e.order_id == OID and e.causation_id == Context.of(message, T0).causation_id for e in decision)
        after = fold(state, decision)  # evolve checks the versions are contiguous
        assert after.status in ALLOWED[state.status], (state.status, after.status, message)
        if after.status is OrderStatus.CONFIRMED and state.status is not OrderStatus.CONFIRMED:
            assert after.payment is PaymentStatus.AUTHORIZED and after.fully_reserved
        assert all(0 <= after.returned_of(line.sku) <= line.quantity for line in after.lines), "never over-returned"
        if after.status is OrderStatus.RETURNED:
            assert after.returnable() == ()
        state = after
    assert state.version == 0 or state.exists


@settings(max_examples=100, deadline=None)
@given(st.lists(message_strategy, max_size=15))
def test_deciding_is_deterministic(messages):
    state_a = state_b = NEW
    for message in messages:
        a = decide(message, state_a, Context.of(message, T0))
        b = decide(message, state_b, Context.of(message, T0))
        assert a == b
        if not isinstance(a, Rejection):
            state_a, state_b = fold(state_a, a), fold(state_b, b)


# --- dispatch decided by the order, and returns ------------------------------------------------------------------


def test_once_the_dispatch_is_accepted_a_cancel_is_refused_with_a_reason_that_says_so():
    refused = decide(cancel(), SHIPPED, Context.of(cancel(), T0))
    assert isinstance(refused, Rejection) and refused.code is RejectionCode.ILLEGAL_TRANSITION
    assert "SHIPPED: it cannot be cancelled" in refused.reason and "dispatch was accepted" in refused.reason
    assert "return" in refused.reason


@pytest.mark.parametrize("first", ["ship", "cancel"])
def test_ship_and_cancel_of_one_confirmed_order_are_decided_one_after_the_other_and_one_wins(first):
    messages = [ship(), cancel()] if first == "ship" else [cancel(), ship()]
    state, outcomes = CONFIRMED, []
    for message in messages:
        decision = decide(message, state, Context.of(message, T0))
        outcomes.append(isinstance(decision, Rejection))
        if not isinstance(decision, Rejection):
            state = fold(state, decision)
    assert outcomes == [False, True]
    assert state.status is (OrderStatus.SHIPPED if first == "ship" else OrderStatus.CANCELLED)


def test_a_ship_of_a_cancelled_order_says_it_was_cancelled_and_a_stale_version_is_a_conflict():
    refused = decide(ship(), CANCELLED, Context.of(ship(), T0))
    assert isinstance(refused, Rejection) and "was cancelled" in refused.reason
    stale = decide(ship(expected_version=4), CONFIRMED, Context.of(ship(), T0))
    assert isinstance(stale, Rejection) and stale.code is RejectionCode.VERSION_CONFLICT


def test_a_whole_return_takes_back_every_line_and_refunds_the_order_total():
    (returned,) = decide(return_order(), DELIVERED, Context.of(return_order(), T0))
    assert isinstance(returned, OrderReturned) and returned.fully_returned and returned.restock
    assert returned.lines == LINES and returned.refund_minor == 1300
    assert RETURNED.status is OrderStatus.RETURNED and RETURNED.returnable() == ()


def test_a_partial_return_refunds_the_returned_lines_and_the_rest_can_follow():
    (first,) = decide(return_order(("A", 1), restock=False), DELIVERED, Context.of(return_order(), T0))
    assert (first.refund_minor, first.fully_returned, first.restock) == (150, False, False)
    assert PARTIALLY_RETURNED.status is OrderStatus.PARTIALLY_RETURNED and PARTIALLY_RETURNED.returned_of("A") == 1
    rest = run(PARTIALLY_RETURNED, return_order(command_id="c-rest"))
    assert rest.status is OrderStatus.RETURNED
    (last,) = decide(return_order(command_id="c-r"), PARTIALLY_RETURNED, Context.of(ship(), T0))
    assert last.lines == (replace(LINES[0], quantity=1), LINES[1]) and last.refund_minor == 1150


@pytest.mark.parametrize(
    ("state", "items", "fragment"),
    [
        (DELIVERED, (("A", 3),), "cannot return 3 of A: 2 delivered and not returned"),
        (PARTIALLY_RETURNED, (("A", 2),), "cannot return 2 of A: 1 delivered and not returned"),
        (DELIVERED, (("Z", 1),), "cannot return 1 of Z: 0 delivered"),
        (RETURNED, (), "returned whole: nothing is left"),
        (SHIPPED, (), "SHIPPED: it cannot be returned (only a delivered order can)"),
        (CONFIRMED, (("A", 1),), "CONFIRMED: it cannot be returned"),
        (NEW, (), "does not exist"),
    ],
)
def test_a_return_of_more_than_was_delivered_or_of_an_undelivered_order_is_refused(state, items, fragment):
    message = return_order(*items)
    refused = decide(message, state, Context.of(message, T0))
    assert isinstance(refused, Rejection) and fragment in refused.reason, refused


def test_a_return_naming_a_sku_twice_or_a_zero_quantity_is_invalid():
    for items in ((("A", 1), ("A", 1)), (("A", 0),)):
        message = return_order(*items)
        refused = decide(message, DELIVERED, Context.of(message, T0))
        assert isinstance(refused, Rejection) and refused.code is RejectionCode.INVALID
