"""The order service: the Order decider wired into the processor runtime.

Input: orders.commands (PlaceOrder, CancelOrder, ShipOrder, DeliverOrder, ReturnOrder). Changelog: orders.events.
The order is the single writer of its whole lifecycle, dispatch included: a ship and a cancel of one order are decided
one after the other on its latest state, so they can never both win. Every command gets a Reply on
orders.replies, keyed by the order id, on the command's partition number. A repeated command id (one that already
produced events, i.e. is the causation id of events in the order's stream) produces nothing new and gets the same
reply as the first time. It also reacts to the other services' answers (REACTION_TOPICS: payments.events,
inventory.results, shipping.events), all keyed by order id with the same partition count and partitioner as
orders.commands, so with the range assignor one instance owns partition p of every input and of orders.events: one
writer per order for commands and reactions alike. A repeated reaction changes nothing (the decider sees it is known).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

from orderstream.config import Settings
from orderstream.domain import order
from orderstream.domain.order import OrderState
from orderstream.runtime.processor import HandleContext
from orderstream.runtime.replies import Replies
from orderstream.runtime.slotted import SlottedService, Stage
from orderstream.services.order_keyed import OrderKeyedLogic
from orderstream.topology import (
    INVENTORY_RESULTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_REPLIES,
    PAYMENTS_EVENTS,
    SHIPPING_EVENTS,
)

log = logging.getLogger(__name__)

NAME = "order"
SOURCE = "orderstream/order-service"
REACTION_TOPICS = (PAYMENTS_EVENTS, INVENTORY_RESULTS, SHIPPING_EVENTS)
INPUT_TOPICS = (ORDERS_COMMANDS, *REACTION_TOPICS)
REPLIES = Replies(ORDERS_REPLIES, ORDERS_EVENTS)


def group_of(settings: Settings) -> str:
    return f"{settings.topic_prefix}order-service"


class OrderLogic(OrderKeyedLogic):
    """Decides order commands and reactions on the order's current state; replies to every command."""

    aggregate = "order"
    replies = REPLIES
    logger = log
    accepts = order.HANDLED_TYPES  # anything else on an input topic is dead-lettered at the validate stage

    def initial(self, key: str) -> OrderState:
        return order.initial_state(key)

    def evolve(self, state: OrderState, event: Any) -> OrderState:
        return order.evolve(state, event)

    def decide(self, message: Any, state: OrderState, context: HandleContext) -> order.Decision:
        return order.decide(message, state, order.Context.of(message, context.now))


STAGE: Stage[OrderState] = Stage(
    service=NAME,
    source=SOURCE,
    name=NAME,
    group=group_of,
    input_topics=INPUT_TOPICS,
    changelog_topic=ORDERS_EVENTS,
    logic=lambda settings: OrderLogic(),
)


class OrderService(SlottedService):
    """`orderstream run order`: one order processor with a stable instance slot (and so a stable transactional.id)."""

    name = NAME
    stages = MappingProxyType({NAME: STAGE})


def build_order_service(settings: Settings) -> OrderService:
    return OrderService(settings)
