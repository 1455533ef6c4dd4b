"""The payment deciders: the order stage (what to ask for) and the customer stage (limits, idempotent releases), as
state x message tables, plus a property: no sequence of commands ever takes a customer over the credit limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderstream.domain import payment
from orderstream.domain.commands import AuthorizePayment, CapturePayment, RefundPayment, ReleasePayment
from orderstream.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
)
from orderstream.domain.payment import (
    Context,
    CustomerLedger,
    LedgerStatus,
    PaymentLimits,
    PaymentOrder,
    decide_customer,
    decide_order,
    evolve_customer,
    evolve_order,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OID = "o-1"
CUST = "cust-1"
LIMITS = PaymentLimits(order_limit_minor=500_000, credit_limit_minor=2_000_000)


def _meta(version: int, event_id: str) -> dict:
    return dict(event_id=event_id, version=version, occurred_at=T0, correlation_id=OID, causation_id="cause")


def placed(total: int = 1300) -> OrderPlaced:
    return OrderPlaced(
        **_meta(1, "e-placed"),
        order_id=OID,
        customer_id=CUST,
        currency="EUR",
        lines=(OrderLine(sku="A", quantity=1, unit_price_minor=total),),
        total_minor=total,
        channel="cli",
    )


def confirmed(version: int = 4) -> OrderConfirmed:
    return OrderConfirmed(**_meta(version, "e-confirmed"), order_id=OID)


def rejected(version: int = 3) -> OrderRejected:
    return OrderRejected(**_meta(version, "e-rejected"), order_id=OID, reason="stock for A unavailable")


def cancelled(version: int = 5) -> OrderCancelled:
    return OrderCancelled(**_meta(version, "e-cancelled"), order_id=OID, reason="changed my mind")


def shipped(version: int = 5) -> OrderShipped:
    return OrderShipped(**_meta(version, "e-shipped"), order_id=OID, carrier="DHL", tracking_number="T")


def returned(amount: int, version: int = 7, event_id: str = "e-returned") -> OrderReturned:
    return OrderReturned(
        **_meta(version, event_id),
        order_id=OID,
        lines=(OrderLine(sku="A", quantity=1, unit_price_minor=amount),),
        refund_minor=amount,
        restock=True,
        reason="too small",
        fully_returned=False,
    )


def order_state(*events) -> PaymentOrder:
    state = PaymentOrder(OID)
    for event in events:
        state = evolve_order(state, event)
    return state


# --- order stage ---------------------------------------------------------------------------------------------------


def test_a_placed_order_is_mirrored_and_asks_to_authorize_its_total_keyed_by_customer():
    decision = decide_order(placed(1300), order_state(), T0)

    assert decision.mirror == (placed(1300),)
    (request,) = decision.requests
    assert isinstance(request, AuthorizePayment)
    assert (request.order_id, request.customer_id, request.amount_minor, request.currency) == (OID, CUST, 1300, "EUR")
    assert request.aggregate_id == CUST
    assert (request.correlation_id, request.causation_id) == (OID, "e-placed")
    assert decide_order(placed(1300), order_state(), T0) == decision, "deterministic: same input, same command id"


@pytest.mark.parametrize(
    ("history", "event", "refund"),
    [
        ((placed(),), rejected(), False),
        ((placed(),), cancelled(2), False),
        ((placed(), confirmed()), cancelled(), True),
    ],
    ids=["rejected->void", "cancelled-before-confirm->void", "cancelled-after-confirm->refund"],
)
def test_an_ending_order_asks_once_to_release_its_payment(history, event, refund):
    state = order_state(*history)

    decision = decide_order(event, state, T0)

    assert decision.mirror == (event,)
    (request,) = decision.requests
    assert isinstance(request, ReleasePayment)
    assert (request.customer_id, request.refund, request.causation_id) == (CUST, refund, event.event_id)
    assert event.reason in request.reason
    after = evolve_order(state, event)
    assert decide_order(cancelled(9), after, T0) == payment.OrderStageDecision(), "once"


@pytest.mark.parametrize(
    ("history", "event"),
    [
        ((), confirmed()),  # never placed
        ((), rejected()),
        ((placed(),), placed()),  # a repeat
        ((placed(), confirmed()), confirmed()),
        ((placed(), rejected()), cancelled()),
        ((placed(),), OrderDelivered(**_meta(6, "e-delivered"), order_id=OID)),
        ((placed(), confirmed(), shipped()), shipped(6)),
        ((placed(), confirmed()), returned(100)),  # never shipped through this stage: nothing captured
    ],
    ids=[
        "confirm-unplaced",
        "reject-unplaced",
        "placed-twice",
        "confirmed-twice",
        "cancel-after-reject",
        "other-type",
        "shipped-twice",
        "return-unshipped",
    ],
)
def test_what_does_not_apply_changes_nothing(history, event):
    assert decide_order(event, order_state(*history), T0) == payment.OrderStageDecision()


def test_an_accepted_dispatch_asks_once_to_capture_and_each_return_to_refund_its_amount():
    state = order_state(placed(1300), confirmed())

    capture = decide_order(shipped(), state, T0)
    (request,) = capture.requests
    assert isinstance(request, CapturePayment) and capture.mirror == (shipped(),)
    assert (request.customer_id, request.order_id, request.causation_id) == (CUST, OID, "e-shipped")
    state = evolve_order(state, shipped())

    first = decide_order(returned(300), state, T0).requests
    state = evolve_order(state, returned(300))
    second = decide_order(returned(1000, version=8, event_id="e-returned-2"), state, T0).requests
    assert [(type(r), r.amount_minor) for r in first + second] == [(RefundPayment, 300), (RefundPayment, 1000)]
    assert first[0].command_id != second[0].command_id
    assert decide_order(cancelled(9), state, T0) == payment.OrderStageDecision(), "a shipped order is never released"


def test_a_misrouted_order_event_is_an_error():
    with pytest.raises(ValueError, match="routed"):
        decide_order(placed(), PaymentOrder("o-other"), T0)


# --- customer stage ------------------------------------------------------------------------------------------------


def authorize(order_id: str, amount: int, currency: str = "EUR", command_id: str | None = None) -> AuthorizePayment:
    return AuthorizePayment(
        command_id=command_id or f"auth-{order_id}",
        issued_at=T0,
        correlation_id=order_id,
        causation_id=f"placed-{order_id}",
        order_id=order_id,
        customer_id=CUST,
        amount_minor=amount,
        currency=currency,
    )


def release(order_id: str, refund: bool = False) -> ReleasePayment:
    return ReleasePayment(
        command_id=f"rel-{order_id}-{refund}",
        issued_at=T0,
        correlation_id=order_id,
        causation_id=f"ended-{order_id}",
        order_id=order_id,
        customer_id=CUST,
        refund=refund,
        reason="order rejected: out of stock",
    )


def capture(order_id: str) -> CapturePayment:
    return CapturePayment(
        command_id=f"cap-{order_id}",
        issued_at=T0,
        correlation_id=order_id,
        causation_id=f"shipped-{order_id}",
        order_id=order_id,
        customer_id=CUST,
    )


def refund(order_id: str, amount: int, command_id: str | None = None) -> RefundPayment:
    return RefundPayment(
        command_id=command_id or f"ref-{order_id}-{amount}",
        issued_at=T0,
        correlation_id=order_id,
        causation_id=f"returned-{order_id}",
        order_id=order_id,
        customer_id=CUST,
        amount_minor=amount,
        reason="order returned",
    )


def apply(ledger: CustomerLedger, command, limits: PaymentLimits = LIMITS):
    events = decide_customer(command, ledger, limits, Context.of(command, T0))
    for event in events:
        ledger = evolve_customer(ledger, event)
    return events, ledger


def test_an_authorization_within_both_limits_is_authorized_and_counts_as_outstanding():
    (event,), ledger = apply(CustomerLedger(CUST), authorize("o-1", 1300))

    assert isinstance(event, PaymentAuthorized)
    assert (event.order_id, event.customer_id, event.amount_minor, event.version) == ("o-1", CUST, 1300, 1)
    assert (event.correlation_id, event.causation_id) == ("o-1", "auth-o-1")
    assert ledger.outstanding == {"EUR": 1300}
    assert ledger.entries["o-1"].status is LedgerStatus.AUTHORIZED


@pytest.mark.parametrize(
    ("outstanding", "amount", "expected", "named"),
    [
        (0, 500_000, PaymentAuthorized, None),
        (0, 500_001, PaymentDeclined, "per-order limit of 5000.00 EUR"),
        (1_500_000, 500_000, PaymentAuthorized, None),  # exactly at the credit limit
        (1_600_000, 400_001, PaymentDeclined, "credit limit of 20000.00 EUR"),
    ],
)
def test_the_limits_decide_authorized_or_declined_with_a_reason_naming_the_limit(outstanding, amount, expected, named):
    ledger = CustomerLedger(CUST)
    if outstanding:
        for i in range(4):  # four authorized open orders making up `outstanding`
            _, ledger = apply(ledger, authorize(f"o-open-{i}", outstanding // 4))

    (event,), after = apply(ledger, authorize("o-new", amount))

    assert isinstance(event, expected)
    if named:
        assert named in event.reason
        assert after.outstanding_in("EUR") == outstanding
    else:
        assert after.outstanding_in("EUR") == outstanding + amount


def test_limits_apply_per_currency():
    ledger = CustomerLedger(CUST)
    for i in range(4):
        _, ledger = apply(ledger, authorize(f"o-eur-{i}", 500_000))  # the EUR credit is used up

    (eur,), _ = apply(ledger, authorize("o-eur-more", 1))
    (usd,), _ = apply(ledger, authorize("o-usd", 400_000, currency="USD"))

    assert isinstance(eur, PaymentDeclined) and isinstance(usd, PaymentAuthorized)


@pytest.mark.parametrize("refund", [False, True])
def test_a_release_of_an_authorization_never_captured_voids_it_once_since_nothing_was_taken(refund):
    _, ledger = apply(CustomerLedger(CUST), authorize("o-1", 1300))

    (event,), after = apply(ledger, release("o-1", refund))
    again, _ = apply(after, release("o-1", not refund))

    assert isinstance(event, PaymentVoided)
    assert (event.amount_minor, event.currency, event.reason) == (1300, "EUR", "order rejected: out of stock")
    assert after.outstanding == {} and after.entries["o-1"].status is LedgerStatus.VOIDED
    assert again == ()


def test_a_capture_takes_the_authorization_once_and_frees_the_credit_limit():
    _, ledger = apply(CustomerLedger(CUST), authorize("o-1", 1300))

    (event,), after = apply(ledger, capture("o-1"))

    assert isinstance(event, PaymentCaptured) and (event.amount_minor, event.currency) == (1300, "EUR")
    assert after.outstanding == {} and after.entries["o-1"].captured_minor == 1300
    assert apply(after, capture("o-1"))[0] == () and apply(after, release("o-1", True))[0] == ()


def test_refunds_give_back_at_most_what_was_captured():
    _, ledger = apply(CustomerLedger(CUST), authorize("o-1", 1300))
    assert apply(ledger, refund("o-1", 100))[0] == (), "nothing captured yet: nothing to refund"
    _, ledger = apply(ledger, capture("o-1"))

    (first,), ledger = apply(ledger, refund("o-1", 1000))
    (second,), ledger = apply(ledger, refund("o-1", 1000, command_id="again"))
    nothing, ledger = apply(ledger, refund("o-1", 1, command_id="more"))

    assert isinstance(first, PaymentRefunded) and (first.amount_minor, second.amount_minor) == (1000, 300)
    assert nothing == ()
    entry = ledger.entries["o-1"]
    assert (entry.captured_minor, entry.refunded_minor, entry.refundable_minor) == (1300, 1300, 0)


def test_a_customer_with_many_delivered_orders_is_not_declined_for_credit():
    ledger = CustomerLedger(CUST)
    limits = PaymentLimits(order_limit_minor=1_000, credit_limit_minor=1_000)
    for i in range(50):
        (event,), ledger = apply(ledger, authorize(f"o-{i}", 1_000), limits)
        assert isinstance(event, PaymentAuthorized), event
        _, ledger = apply(ledger, capture(f"o-{i}"), limits)
    assert ledger.outstanding == {}


@pytest.mark.parametrize(
    ("history", "command"),
    [
        ((), release("o-1")),  # nothing authorized
        ((authorize("o-1", 900_000),), release("o-1")),  # declined (over the order limit): nothing to release
        ((authorize("o-1", 1300),), authorize("o-1", 1300, command_id="another")),  # decided already
        ((authorize("o-1", 1300), release("o-1")), authorize("o-1", 1300, command_id="late")),
    ],
    ids=["release-unknown", "release-declined", "authorize-twice", "authorize-after-release"],
)
def test_what_does_not_apply_produces_no_ledger_event(history, command):
    ledger = CustomerLedger(CUST)
    for earlier in history:
        _, ledger = apply(ledger, earlier)

    events, after = apply(ledger, command)

    assert events == () and after == ledger


def test_a_misrouted_command_is_an_error():
    with pytest.raises(ValueError, match="routed"):
        apply(CustomerLedger("someone-else"), authorize("o-1", 1))


def test_the_ledger_refuses_an_event_that_does_not_continue_it():
    (event,), ledger = apply(CustomerLedger(CUST), authorize("o-1", 1))
    with pytest.raises(payment.EvolveError, match="version"):
        evolve_customer(ledger, event)


# --- property: the credit limit is never exceeded ----------------------------------------------------------------

_orders = st.sampled_from([f"o-{i}" for i in range(8)])
_commands = st.one_of(
    st.builds(lambda o, a, c: authorize(o, a, c), _orders, st.integers(0, 700_000), st.sampled_from(["EUR", "USD"])),
    st.builds(lambda o, r: release(o, r), _orders, st.booleans()),
    st.builds(capture, _orders),
    st.builds(lambda o, a, i: refund(o, a, f"ref-{i}"), _orders, st.integers(1, 700_000), st.integers(0, 5)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_commands, max_size=40), st.integers(0, 600_000), st.integers(0, 2_500_000))
def test_no_sequence_of_commands_exceeds_the_credit_limit(commands, order_limit, credit_limit):
    limits = PaymentLimits(order_limit, credit_limit)
    ledger = CustomerLedger(CUST)
    for command in commands:
        events, ledger = apply(ledger, command, limits)
        assert len(events) <= 1
        for currency, amount in ledger.outstanding.items():
            assert 0 < amount <= credit_limit, (currency, amount)
        for event in events:
            if isinstance(event, PaymentAuthorized):
                assert event.amount_minor <= order_limit
    assert all(0 <= entry.refunded_minor <= entry.captured_minor for entry in ledger.entries.values())
    # the outstanding total is exactly the authorized entries, neither captured nor released
    expected: dict[str, int] = {}
    for entry in ledger.entries.values():
        if entry.status is LedgerStatus.AUTHORIZED:
            expected[entry.currency] = expected.get(entry.currency, 0) + entry.amount_minor
    assert ledger.outstanding == {c: a for c, a in expected.items() if a}
