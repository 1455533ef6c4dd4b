"""The inventory service: the two inventory deciders (domain/inventory.py) wired into two processors.

Order stage (keyed by order id): input orders.events, changelog inventory.orders (the OrderPlaced / OrderRejected /
OrderCancelled / OrderShipped / OrderReturned events it acted on, mirrored as they are, so its state - an order's
lines and whether they were released or shipped - is rebuilt from it). It writes ReserveStock / ReleaseStock /
ShipStock / ReturnStock per line to inventory.reservations, keyed by SKU, in the same transaction that consumes the
order event: an order line is re-keyed exactly once per event.

SKU stage (keyed by SKU): inputs inventory.reservations and inventory.commands (RestockSku), changelog inventory.events.
One writer per SKU (the group's owner of the SKU's partition) decides every change of a SKU on its latest state, so two
reservations can never both take the last unit. ShipStock lowers on hand and reserved by what the order holds
(StockShipped), ReturnStock puts returned units back on hand (StockReturned). Every StockReserved,
StockReservationRejected and StockReleased is also written, in the same transaction, to inventory.results keyed by the
order id (the partitioner co-locates it with the order), which the order service consumes. A RestockSku gets a Reply on
inventory.replies, keyed by SKU, on the command's partition number; a repeated command id gets the first reply again and
changes nothing.

A record a stage cannot take (undecodable, of a type it does not handle, or under a key that is not its aggregate id)
goes to <topic>.dlq in the batch's transaction (the processor's dead-letter hook) and work goes on.

`orderstream run inventory` runs both stages in threads of one process, with one instance slot for both (so each
stage's transactional.id, <group>-<slot>, is stable across restarts).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

from orderstream.config import Settings
from orderstream.domain import inventory
from orderstream.domain.commands import INVENTORY_COMMANDS as INVENTORY_COMMANDS_TYPES
from orderstream.domain.commands import RestockSku
from orderstream.domain.events import ORDER_EVENTS
from orderstream.domain.inventory import OrderLinesState, Rejection, StockState
from orderstream.runtime.processor import HandleContext, Outcome, Output
from orderstream.runtime.replies import Replies
from orderstream.runtime.slotted import SlottedService, Stage
from orderstream.runtime.state import KeyState
from orderstream.topology import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_ORDERS,
    INVENTORY_REPLIES,
    INVENTORY_RESERVATIONS,
    INVENTORY_RESULTS,
    ORDERS_EVENTS,
)

log = logging.getLogger(__name__)

NAME = "inventory"
SOURCE = "orderstream/inventory-service"
ORDER_STAGE_INPUTS = (ORDERS_EVENTS,)
SKU_STAGE_INPUTS = (INVENTORY_RESERVATIONS, INVENTORY_COMMANDS)
REPLIES = Replies(INVENTORY_REPLIES, INVENTORY_EVENTS)  # restocks only


def order_stage_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}inventory-orders"


def sku_stage_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}inventory-stock"


class OrderStageLogic:
    """Re-keys placed orders' lines by SKU (ReserveStock) and gives them back (ReleaseStock) once the order is rejected
    or cancelled. Each order event is acted on at most once (its state remembers the last mirrored version)."""

    accepts = ORDER_EVENTS  # anything else on orders.events is dead-lettered at the validate stage

    def initial(self, key: str) -> OrderLinesState:
        return inventory.order_initial(key)

    def evolve(self, state: OrderLinesState, event: Any) -> OrderLinesState:
        return inventory.order_evolve(state, event)

    def handle(self, message: Any, state: KeyState[OrderLinesState], context: HandleContext) -> Outcome:
        if message.order_id != context.key:  # raising dead-letters the record (apply stage)
            raise ValueError(f"{type(message).__name__} of order {message.order_id!r} under key {context.key!r}")
        reaction = inventory.react_to_order(message, state.value, context.now)
        return Outcome(
            events=reaction.mirror,
            outputs=[Output(INVENTORY_RESERVATIONS, command.sku, command) for command in reaction.commands],
        )


class SkuStageLogic:
    """Decides restocks, reservations and releases of one SKU on its current stock; answers orders on
    inventory.results and restocks on inventory.replies."""

    accepts = INVENTORY_COMMANDS_TYPES  # anything else on its inputs is dead-lettered at the validate stage

    def initial(self, key: str) -> StockState:
        return inventory.stock_initial(key)

    def evolve(self, state: StockState, event: Any) -> StockState:
        return inventory.stock_evolve(state, event)

    def handle(self, message: Any, state: KeyState[StockState], context: HandleContext) -> Outcome:
        is_restock = isinstance(message, RestockSku)
        seen = state.handled.get(message.command_id)
        if seen is not None:  # handled before: nothing new, the same answer
            log.info(
                "sku %s: %s %s was already handled (version %d)",
                context.key,
                message.type_name,
                message.command_id,
                seen.version,
            )
            return Outcome(reply=(lambda: REPLIES.accepted(message, seen)) if is_restock else None)
        if message.sku != context.key and not is_restock:  # raising dead-letters the record (apply stage)
            raise ValueError(f"{message.type_name} for sku {message.sku!r} under key {context.key!r}")
        decision = inventory.decide(message, state.value, inventory.Context.of(message, context.now))
        if isinstance(decision, Rejection):
            if not is_restock:  # only a restock can be refused; anything else is a bug upstream: dead-letter it
                raise ValueError(decision.reason)
            return REPLIES.rejected(message, decision, context)
        outputs = [
            Output(INVENTORY_RESULTS, order_id, event)
            for event in decision
            if (order_id := inventory.reservation_result_key(event)) is not None
        ]
        if is_restock:
            # the processor records state.handled[command_id] for the events and fills in the offset before reply()
            return Outcome(
                events=decision,
                outputs=outputs,
                reply=lambda: REPLIES.accepted(message, state.handled[message.command_id]),
            )
        return Outcome(events=decision, outputs=outputs)


ORDER_STAGE: Stage[OrderLinesState] = Stage(
    service=NAME,
    source=SOURCE,
    name=f"{NAME}-orders",
    group=order_stage_group,
    input_topics=ORDER_STAGE_INPUTS,
    changelog_topic=INVENTORY_ORDERS,
    logic=lambda settings: OrderStageLogic(),
)
SKU_STAGE: Stage[StockState] = Stage(
    service=NAME,
    source=SOURCE,
    name=f"{NAME}-stock",
    group=sku_stage_group,
    input_topics=SKU_STAGE_INPUTS,
    changelog_topic=INVENTORY_EVENTS,
    logic=lambda settings: SkuStageLogic(),
)


class InventoryService(SlottedService):
    """`orderstream run inventory`: the order stage and the SKU stage, each a Processor in its own thread, sharing one
    instance slot. If either stage fails, both stop and run() raises StageFailed (the first error as its cause)."""

    name = NAME
    stages = MappingProxyType({"orders": ORDER_STAGE, "stock": SKU_STAGE})


def build_inventory_service(settings: Settings) -> InventoryService:
    return InventoryService(settings)
