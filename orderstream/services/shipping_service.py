"""The shipping service: the shipment decider (domain/shipping.py) wired into the processor runtime.

Inputs, both keyed by order id: orders.events (placed, confirmed, shipped, delivered, rejected, cancelled orders) and
shipping.commands. The order decides its dispatch and delivery (ShipOrder / DeliverOrder on orders.commands), so this
service carries out only what the order accepted (OrderShipped -> ShipmentDispatched, OrderDelivered ->
ShipmentDelivered) and refuses the old DispatchShipment / ConfirmDelivery commands with a reason naming the order
service. Changelog: shipping.events, which the order service consumes (a repeat of what it decided changes nothing).
Every command gets a Reply on shipping.replies, keyed by the order id, on the command's partition number; a repeated
command id produces nothing new and gets the first reply again. A record that cannot be decoded, is not of a type it
takes (`accepts`) or is an order event under another order's key goes to <topic>.dlq in the batch's transaction (the
processor's dead-letter hook).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

from orderstream.config import Settings
from orderstream.domain import shipping
from orderstream.domain.commands import SHIPPING_COMMANDS as SHIPPING_COMMAND_TYPES
from orderstream.domain.events import ORDER_EVENTS
from orderstream.domain.shipping import ShipmentState
from orderstream.runtime.processor import HandleContext
from orderstream.runtime.replies import Replies
from orderstream.runtime.slotted import SlottedService, Stage
from orderstream.services.order_keyed import OrderKeyedLogic
from orderstream.topology import ORDERS_EVENTS, SHIPPING_COMMANDS, SHIPPING_EVENTS, SHIPPING_REPLIES

log = logging.getLogger(__name__)

NAME = "shipping"
SOURCE = "orderstream/shipping-service"
INPUT_TOPICS = (ORDERS_EVENTS, SHIPPING_COMMANDS)
REPLIES = Replies(SHIPPING_REPLIES, SHIPPING_EVENTS)


def group_of(settings: Settings) -> str:
    return f"{settings.topic_prefix}shipping-service"


class ShippingLogic(OrderKeyedLogic):
    """Opens, dispatches, delivers and cancels one shipment per order; replies to every shipping command."""

    aggregate = "shipment"
    replies = REPLIES
    logger = log
    unchanged_level = logging.WARNING
    accepts = (
        ORDER_EVENTS + SHIPPING_COMMAND_TYPES
    )  # anything else on its inputs is dead-lettered at the validate stage

    def initial(self, key: str) -> ShipmentState:
        return shipping.initial_state(key)

    def evolve(self, state: ShipmentState, event: Any) -> ShipmentState:
        return shipping.evolve(state, event)

    def decide(self, message: Any, state: ShipmentState, context: HandleContext) -> shipping.Decision:
        return shipping.decide(message, state, shipping.Context.of(message, context.now))


STAGE: Stage[ShipmentState] = Stage(
    service=NAME,
    source=SOURCE,
    name=NAME,
    group=group_of,
    input_topics=INPUT_TOPICS,
    changelog_topic=SHIPPING_EVENTS,
    logic=lambda settings: ShippingLogic(),
)


class ShippingService(SlottedService):
    """`orderstream run shipping`: one shipping processor with a stable instance slot (and so transactional.id)."""

    name = NAME
    stages = MappingProxyType({NAME: STAGE})


def build_shipping_service(settings: Settings) -> ShippingService:
    return ShippingService(settings)
