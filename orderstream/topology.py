"""Every topic of the pipeline: its name, what it holds, what it is keyed by and how long it keeps data.

Pure data: `orderstream topics init` creates these, the services read and write them by these names.
Topics that are joined (read together by one processor) share the partition count, so a key lands on the same
partition number in each.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TopicKind(Enum):
    EVENTS = "events"  # the system of record: kept forever
    COMMANDS = "commands"  # requests to a service
    REPLIES = "replies"  # outcomes of commands, read by whoever waits
    INTERNAL = "internal"  # re-keyed streams inside one service
    DLQ = "dlq"  # dead letters, kept forever


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    kind: TopicKind
    key: str
    description: str
    keep_forever: bool = False  # an internal changelog that state is rebuilt from outlives the default retention

    @property
    def retention_ms(self) -> int:
        if self.keep_forever or self.kind in (TopicKind.EVENTS, TopicKind.DLQ):
            return -1
        if self.kind is TopicKind.REPLIES:
            return 24 * 3600 * 1000
        return 7 * 24 * 3600 * 1000

    @property
    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


ORDERS_COMMANDS = "orders.commands"
ORDERS_EVENTS = "orders.events"
ORDERS_REPLIES = "orders.replies"
PAYMENTS_EVENTS = "payments.events"
PAYMENTS_REQUESTS = "payments.requests"
PAYMENTS_ORDERS = "payments.orders"
PAYMENTS_LEDGER = "payments.ledger"
INVENTORY_COMMANDS = "inventory.commands"
INVENTORY_RESERVATIONS = "inventory.reservations"
INVENTORY_EVENTS = "inventory.events"
INVENTORY_RESULTS = "inventory.results"
INVENTORY_REPLIES = "inventory.replies"
INVENTORY_ORDERS = "inventory.orders"
SHIPPING_COMMANDS = "shipping.commands"
SHIPPING_EVENTS = "shipping.events"
SHIPPING_REPLIES = "shipping.replies"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        ORDERS_COMMANDS,
        TopicKind.COMMANDS,
        "order id",
        "PlaceOrder, CancelOrder, ShipOrder, DeliverOrder, ReturnOrder from the CLI",
    ),
    TopicSpec(ORDERS_EVENTS, TopicKind.EVENTS, "order id", "the Order aggregate's events (its changelog)"),
    TopicSpec(ORDERS_REPLIES, TopicKind.REPLIES, "order id", "the outcome of every order command"),
    TopicSpec(PAYMENTS_REQUESTS, TopicKind.INTERNAL, "customer id", "order payments re-keyed by customer"),
    TopicSpec(PAYMENTS_EVENTS, TopicKind.EVENTS, "order id", "authorizations, declines, captures, voids, refunds"),
    # changelogs of the payment service's two stages: kept forever, since their state is rebuilt from them
    TopicSpec(PAYMENTS_ORDERS, TopicKind.EVENTS, "order id", "the payment order stage's mirror of the orders it pays"),
    TopicSpec(PAYMENTS_LEDGER, TopicKind.EVENTS, "customer id", "each customer's payment events (the credit ledger)"),
    TopicSpec(INVENTORY_COMMANDS, TopicKind.COMMANDS, "SKU", "RestockSku from the CLI"),
    TopicSpec(
        INVENTORY_RESERVATIONS,
        TopicKind.INTERNAL,
        "SKU",
        "order lines re-keyed by SKU (reserve, release, ship, return)",
    ),
    TopicSpec(INVENTORY_EVENTS, TopicKind.EVENTS, "SKU", "stock changes per SKU (its changelog)"),
    TopicSpec(INVENTORY_RESULTS, TopicKind.EVENTS, "order id", "reservation outcomes, answered per order"),
    TopicSpec(INVENTORY_REPLIES, TopicKind.REPLIES, "SKU", "the outcome of every inventory command"),
    TopicSpec(
        INVENTORY_ORDERS,
        TopicKind.INTERNAL,
        "order id",
        "the order events the inventory acts on (its order stage's changelog)",
        keep_forever=True,
    ),
    TopicSpec(
        SHIPPING_COMMANDS,
        TopicKind.COMMANDS,
        "order id",
        "the old DispatchShipment, ConfirmDelivery (refused: the order decides)",
    ),
    TopicSpec(SHIPPING_EVENTS, TopicKind.EVENTS, "order id", "shipments created, dispatched, delivered"),
    TopicSpec(SHIPPING_REPLIES, TopicKind.REPLIES, "order id", "the outcome of every shipping command"),
)


def dlq_name(topic: str) -> str:
    return f"{topic}.dlq"


def all_topics() -> tuple[TopicSpec, ...]:
    """The pipeline's topics plus a dead-letter topic for every topic a service consumes."""
    consumed = [spec for spec in TOPICS if spec.kind is not TopicKind.REPLIES]
    dlqs = tuple(TopicSpec(dlq_name(s.name), TopicKind.DLQ, s.key, f"dead letters of {s.name}") for s in consumed)
    return TOPICS + dlqs
