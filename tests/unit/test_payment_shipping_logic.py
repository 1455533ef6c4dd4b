"""The payment and shipping services' wiring (ProcessorLogic.handle) without Kafka: where each record goes, keyed by
what, and what a repeat or a misrouted record does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderstream.domain.commands import AuthorizePayment, DispatchShipment
from orderstream.domain.events import OrderLine, OrderPlaced, PaymentAuthorized
from orderstream.domain.payment import CustomerLedger, PaymentLimits, PaymentOrder
from orderstream.domain.shipping import initial_state
from orderstream.runtime.processor import HandleContext
from orderstream.runtime.state import Handled, KeyState
from orderstream.services.payment_service import CustomerStageLogic, OrderStageLogic
from orderstream.services.shipping_service import ShippingLogic

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PLACED = OrderPlaced(
    event_id="e-1",
    version=1,
    occurred_at=T0,
    correlation_id="o-1",
    causation_id="c-1",
    order_id="o-1",
    customer_id="cust-1",
    currency="EUR",
    lines=(OrderLine(sku="A", quantity=1, unit_price_minor=700),),
    total_minor=700,
)
AUTHORIZE = AuthorizePayment(
    command_id="a-1",
    issued_at=T0,
    correlation_id="o-1",
    causation_id="e-1",
    order_id="o-1",
    customer_id="cust-1",
    amount_minor=700,
    currency="EUR",
)


def context(topic: str, key: str, partition: int = 2) -> HandleContext:
    return HandleContext(now=T0, topic=topic, partition=partition, offset=7, key=key)


def test_the_order_stage_mirrors_the_order_event_and_sends_the_request_keyed_by_customer():
    outcome = OrderStageLogic().handle(PLACED, KeyState(PaymentOrder("o-1")), context("orders.events", "o-1"))

    assert outcome.events == (PLACED,) and outcome.reply is None
    (output,) = outcome.outputs
    assert (output.topic, output.key, output.partition) == ("payments.requests", "cust-1", None)
    assert isinstance(output.value, AuthorizePayment) and output.value.amount_minor == 700


def test_the_customer_stage_writes_its_ledger_and_publishes_each_payment_event_by_order_id():
    logic = CustomerStageLogic(PaymentLimits(1000, 1000))

    outcome = logic.handle(AUTHORIZE, KeyState(CustomerLedger("cust-1")), context("payments.requests", "cust-1"))

    (event,) = outcome.events
    assert isinstance(event, PaymentAuthorized) and event.causation_id == "a-1"
    (output,) = outcome.outputs
    assert (output.topic, output.key, output.partition, output.value) == ("payments.events", "o-1", None, event)


def test_a_repeated_request_changes_nothing():
    state = KeyState(CustomerLedger("cust-1"), {"a-1": Handled(1, 2, 5, T0)})
    outcome = CustomerStageLogic(PaymentLimits(1000, 1000)).handle(
        AUTHORIZE, state, context("payments.requests", "cust-1")
    )
    assert (outcome.events, outcome.outputs) == ((), ())


@pytest.mark.parametrize(
    ("logic", "message", "state", "topic", "key"),
    [
        (OrderStageLogic(), PLACED, KeyState(PaymentOrder("o-2")), "orders.events", "o-2"),
        (
            CustomerStageLogic(PaymentLimits(1, 1)),
            AUTHORIZE,
            KeyState(CustomerLedger("cust-2")),
            "payments.requests",
            "cust-2",
        ),
        (ShippingLogic(), PLACED, KeyState(initial_state("o-2")), "orders.events", "o-2"),
    ],
    ids=["payment-order-stage", "payment-customer-stage", "shipping"],
)
def test_a_record_under_another_aggregates_key_is_refused_so_it_is_dead_lettered(logic, message, state, topic, key):
    with pytest.raises(ValueError, match="key"):
        logic.handle(message, state, context(topic, key))


def test_a_shipping_rejection_replies_on_the_commands_partition():
    command = DispatchShipment(
        command_id="s-1", issued_at=T0, correlation_id="o-1", order_id="o-1", carrier="DHL", tracking_number="T-1"
    )

    outcome = ShippingLogic().handle(command, KeyState(initial_state("o-1")), context("shipping.commands", "o-1", 1))

    assert outcome.events == ()
    reply = outcome.reply()
    assert (reply.topic, reply.key, reply.partition) == ("shipping.replies", "o-1", 1)
    assert reply.value.accepted is False and "decided by the order service" in reply.value.reason
