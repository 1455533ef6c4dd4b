"""Commands: requests in the imperative, each with exactly one handler, any of which may be rejected.

Every command has a command id (the idempotency key: a repeated id gets the first answer again and changes nothing),
when it was issued, and a correlation id. expected_version, when set, is an optimistic-concurrency check against the
aggregate's current version. A Reply is the outcome of one command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from orderstream.domain.events import OrderLine


@dataclass(frozen=True, kw_only=True, slots=True)
class ReturnItem:
    """A quantity of one SKU of an order to take back."""

    sku: str
    quantity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Command:
    aggregate_field: ClassVar[str] = "order_id"

    command_id: str
    issued_at: datetime
    correlation_id: str

    @property
    def aggregate_id(self) -> str:
        return getattr(self, self.aggregate_field)

    @property
    def type_name(self) -> str:
        return type(self).__name__


# --- orders.commands (key: order id) -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaceOrder(Command):
    order_id: str
    customer_id: str
    currency: str
    lines: tuple[OrderLine, ...]
    channel: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelOrder(Command):
    order_id: str
    reason: str = ""
    expected_version: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ShipOrder(Command):
    """Dispatch a confirmed order. Decided by the order (its single writer), so a cancel and a ship of one order are
    decided one after the other; the shipping service carries out only accepted dispatches."""

    order_id: str
    carrier: str
    tracking_number: str
    expected_version: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliverOrder(Command):
    """The carrier delivered a shipped order."""

    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ReturnOrder(Command):
    """Take back a delivered order, whole (no items) or by line; restock False keeps the units off the shelf."""

    order_id: str
    items: tuple[ReturnItem, ...] = ()
    reason: str = ""
    restock: bool = True


# --- inventory.commands (key: SKU) -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RestockSku(Command):
    aggregate_field: ClassVar[str] = "sku"

    sku: str
    quantity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ReserveStock(Command):
    """Internal: the inventory service re-keys an order line by SKU onto inventory.reservations."""

    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleaseStock(Command):
    """Internal: give back what an order had reserved of a SKU (the order was rejected or cancelled)."""

    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ShipStock(Command):
    """Internal: an order's reservation of a SKU left with its parcel (the order's dispatch was accepted)."""

    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ReturnStock(Command):
    """Internal: returned units of an order go back on hand."""

    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int


# --- payments.requests (key: customer id) -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthorizePayment(Command):
    """Internal: the payment service's order stage asks its customer stage to authorize an order's total.

    Keyed by customer id (one writer per customer, so the credit limit holds). causation_id is the id of the order
    event (OrderPlaced) that asked for it; command_id derives from it, so redoing the same input yields the same id.
    """

    aggregate_field: ClassVar[str] = "customer_id"

    causation_id: str
    order_id: str
    customer_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleasePayment(Command):
    """Internal: give back an order's authorization (the order was rejected or cancelled). refund is True when the
    order had been confirmed (a refund), False before that (a void). causation_id: the order event that asked."""

    aggregate_field: ClassVar[str] = "customer_id"

    causation_id: str
    order_id: str
    customer_id: str
    refund: bool
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CapturePayment(Command):
    """Internal: take an order's authorized amount (its dispatch was accepted). causation_id: the order event."""

    aggregate_field: ClassVar[str] = "customer_id"

    causation_id: str
    order_id: str
    customer_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RefundPayment(Command):
    """Internal: give back amount_minor of what was captured for an order (a return). causation_id: the order event."""

    aggregate_field: ClassVar[str] = "customer_id"

    causation_id: str
    order_id: str
    customer_id: str
    amount_minor: int
    reason: str


# --- shipping.commands (key: order id) ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class DispatchShipment(Command):
    order_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfirmDelivery(Command):
    order_id: str


# --- replies (<service>.replies, keyed like the command) ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    """The outcome of one command: accepted with the aggregate's new version, or rejected with a reason.

    When accepted, events_topic/events_partition/events_offset locate the last event written, which is the
    read-your-writes token a caller hands to `query --after`.
    """

    command_id: str
    aggregate_id: str
    accepted: bool
    version: int
    reason: str
    replied_at: datetime
    correlation_id: str
    events_topic: str | None = None
    events_partition: int | None = None
    events_offset: int | None = None

    @property
    def type_name(self) -> str:
        return type(self).__name__


ORDER_COMMANDS: tuple[type[Command], ...] = (PlaceOrder, CancelOrder, ShipOrder, DeliverOrder, ReturnOrder)
INVENTORY_COMMANDS: tuple[type[Command], ...] = (RestockSku, ReserveStock, ReleaseStock, ShipStock, ReturnStock)
SHIPPING_COMMANDS: tuple[type[Command], ...] = (DispatchShipment, ConfirmDelivery)
PAYMENT_COMMANDS: tuple[type[Command], ...] = (AuthorizePayment, ReleasePayment, CapturePayment, RefundPayment)
ALL_COMMANDS: tuple[type[Command], ...] = ORDER_COMMANDS + INVENTORY_COMMANDS + SHIPPING_COMMANDS + PAYMENT_COMMANDS
