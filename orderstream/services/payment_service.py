"""The payment service: the two payment deciders (domain/payment.py) wired into two processors.

Order stage (keyed by order id): input orders.events, changelog payments.orders (the OrderPlaced / OrderConfirmed /
OrderRejected / OrderCancelled / OrderShipped / OrderReturned events it acted on, mirrored as they are, so its state is
rebuilt from them). It writes AuthorizePayment (on OrderPlaced), ReleasePayment (on the first OrderRejected /
OrderCancelled of a placed order), CapturePayment (on the accepted dispatch, OrderShipped) and RefundPayment (on each
OrderReturned) to payments.requests keyed by CUSTOMER id, in the same transaction that consumes the order event: each
is asked for once.

Customer stage (keyed by customer id): input payments.requests, changelog payments.ledger (the customer's payment
events). One writer per customer decides every authorization on the customer's latest outstanding total, so two
orders can never both squeeze under the credit limit. Every payment event is also written, in the same transaction,
to payments.events keyed by ORDER id (the partitioner co-locates it with the order), which the order service consumes.

A record that cannot be decoded, is not of a type the stage takes (`accepts`), or is refused by its handler (a key
that is not its aggregate's id) goes to <topic>.dlq in the batch's transaction (the processor's dead-letter hook).

`orderstream run payment` runs both stages in threads of one process, sharing one instance slot (so each stage's
transactional.id, <group>-<slot>, is stable across restarts).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

from orderstream.config import Settings
from orderstream.domain import payment
from orderstream.domain.commands import PAYMENT_COMMANDS
from orderstream.domain.events import ORDER_EVENTS
from orderstream.domain.payment import CustomerLedger, PaymentLimits, PaymentOrder
from orderstream.runtime.processor import HandleContext, Outcome, Output
from orderstream.runtime.slotted import SlottedService, Stage
from orderstream.runtime.state import KeyState
from orderstream.topology import ORDERS_EVENTS, PAYMENTS_EVENTS, PAYMENTS_LEDGER, PAYMENTS_ORDERS, PAYMENTS_REQUESTS

log = logging.getLogger(__name__)

NAME = "payment"
SOURCE = "orderstream/payment-service"
ORDER_STAGE_INPUTS = (ORDERS_EVENTS,)
CUSTOMER_STAGE_INPUTS = (PAYMENTS_REQUESTS,)


def order_stage_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}payment-orders"


def customer_stage_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}payment-customers"


def limits_of(settings: Settings) -> PaymentLimits:
    return PaymentLimits(settings.payment_order_limit_minor, settings.payment_credit_limit_minor)


class OrderStageLogic:
    """Asks the customer stage to authorize each placed order once, and to release it once when the order ends."""

    accepts = ORDER_EVENTS  # anything else on orders.events is dead-lettered at the validate stage

    def initial(self, key: str) -> PaymentOrder:
        return PaymentOrder(key)

    def evolve(self, state: PaymentOrder, event: Any) -> PaymentOrder:
        return payment.evolve_order(state, event)

    def handle(self, message: Any, state: KeyState[PaymentOrder], context: HandleContext) -> Outcome:
        if not isinstance(message, ORDER_EVENTS) or message.order_id != context.key:
            raise ValueError(
                f"{context.topic}[{context.partition}]@{context.offset}: {type(message).__name__} under key "
                f"{context.key!r} is not an order event of that order"
            )
        decision = payment.decide_order(message, state.value, context.now)
        return Outcome(
            events=decision.mirror,
            outputs=[Output(PAYMENTS_REQUESTS, request.customer_id, request) for request in decision.requests],
        )


class CustomerStageLogic:
    """Decides each payment request on the customer's ledger; publishes every payment event by order id too."""

    accepts = PAYMENT_COMMANDS  # anything else on payments.requests is dead-lettered at the validate stage

    def __init__(self, limits: PaymentLimits) -> None:
        self.limits = limits

    def initial(self, key: str) -> CustomerLedger:
        return CustomerLedger(key)

    def evolve(self, state: CustomerLedger, event: Any) -> CustomerLedger:
        return payment.evolve_customer(state, event)

    def handle(self, message: Any, state: KeyState[CustomerLedger], context: HandleContext) -> Outcome:
        where = f"{context.topic}[{context.partition}]@{context.offset}"
        if not isinstance(message, PAYMENT_COMMANDS):
            raise TypeError(f"{where}: {type(message).__name__} is not a payment request")
        if message.customer_id != context.key:
            raise ValueError(
                f"{where}: {message.type_name} for customer {message.customer_id!r} under key {context.key!r}"
            )
        seen = state.handled.get(message.command_id)
        if seen is not None:
            log.info(
                "customer %s: %s %s was already handled (version %d)",
                context.key,
                message.type_name,
                message.command_id,
                seen.version,
            )
            return Outcome()
        events = payment.decide_customer(message, state.value, self.limits, payment.Context.of(message, context.now))
        if not events:
            log.info("customer %s: %s for order %s changes nothing", context.key, message.type_name, message.order_id)
        return Outcome(events=events, outputs=[Output(PAYMENTS_EVENTS, event.order_id, event) for event in events])


ORDER_STAGE: Stage[PaymentOrder] = Stage(
    service=NAME,
    source=SOURCE,
    name=f"{NAME}-orders",
    group=order_stage_group,
    input_topics=ORDER_STAGE_INPUTS,
    changelog_topic=PAYMENTS_ORDERS,
    logic=lambda settings: OrderStageLogic(),
)
CUSTOMER_STAGE: Stage[CustomerLedger] = Stage(
    service=NAME,
    source=SOURCE,
    name=f"{NAME}-customers",
    group=customer_stage_group,
    input_topics=CUSTOMER_STAGE_INPUTS,
    changelog_topic=PAYMENTS_LEDGER,
    logic=lambda settings: CustomerStageLogic(limits_of(settings)),
)


class PaymentService(SlottedService):
    """`orderstream run payment`: the order stage and the customer stage, each a Processor in its own thread, sharing
    one instance slot. If either stage fails, both stop and run() raises StageFailed (the first error as its cause)."""

    name = NAME
    stages = MappingProxyType({"orders": ORDER_STAGE, "customers": CUSTOMER_STAGE})


def build_payment_service(settings: Settings) -> PaymentService:
    return PaymentService(settings)
