"""Domain events: immutable facts, named in the past tense.

Every event carries the id of its aggregate (order id, SKU or customer id), its version (its position in that
aggregate's stream, starting at 1), a unique event id, when it happened, and the correlation id (the workflow it belongs
to, e.g. the order id that started it) and causation id (the id of the command or event that caused it).
Money is always integer minor units plus an ISO 4217 currency code, never a float.

These classes know nothing of Kafka or Avro: orderstream.schemas maps them to the wire.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderLine:
    """One line of an order: a quantity of a SKU at a unit price in minor units."""

    sku: str
    quantity: int
    unit_price_minor: int

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Fields every event carries. Subclasses name the field that holds their aggregate id."""

    aggregate_field: ClassVar[str] = "order_id"

    event_id: str
    version: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str

    @property
    def aggregate_id(self) -> str:
        return getattr(self, self.aggregate_field)

    @property
    def type_name(self) -> str:
        return type(self).__name__


# --- orders.events (key: order id) -------------------------------------------------------------------------------


class PaymentStatus(enum.Enum):
    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


class ReservationStatus(enum.Enum):
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPlaced(Event):
    order_id: str
    customer_id: str
    currency: str
    lines: tuple[OrderLine, ...]
    total_minor: int
    channel: str | None = None  # added in schema v2: where the order came from (cli, generator, api, ...)


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPaymentUpdated(Event):
    """The order service took note of what the payment service did for this order."""

    order_id: str
    payment_status: PaymentStatus
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderLineReservationUpdated(Event):
    """The order service took note of what the inventory service did for one line of this order."""

    order_id: str
    sku: str
    reservation_status: ReservationStatus
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderConfirmed(Event):
    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRejected(Event):
    order_id: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCancelled(Event):
    order_id: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderShipped(Event):
    order_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderDelivered(Event):
    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderReturned(Event):
    """The customer sent back some or all of a delivered order: the lines (at their order price), the amount to refund
    and whether the units go back on hand (restock False: damaged goods). fully_returned: nothing delivered is left."""

    order_id: str
    lines: tuple[OrderLine, ...]
    refund_minor: int
    restock: bool
    reason: str
    fully_returned: bool


# --- payments.events (key: order id) -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentAuthorized(Event):
    order_id: str
    customer_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentDeclined(Event):
    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentVoided(Event):
    """An authorization released before capture (the order was rejected or cancelled before shipping)."""

    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentCaptured(Event):
    """The authorized amount was taken (the order's dispatch was accepted): it no longer holds the credit limit."""

    order_id: str
    customer_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentRefunded(Event):
    """Money given back: a part or all of what was captured (a return). Before capture existed this also released an
    authorization of a cancelled confirmed order; the ledger reads such a refund of an uncaptured order as a release."""

    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    reason: str


# --- inventory.events (key: SKU) and inventory.results (key: order id) -------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class StockAdded(Event):
    aggregate_field: ClassVar[str] = "sku"

    sku: str
    quantity: int
    on_hand: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StockReserved(Event):
    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int
    on_hand: int
    reserved: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StockReservationRejected(Event):
    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int
    available: int
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StockReleased(Event):
    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int
    on_hand: int
    reserved: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StockShipped(Event):
    """An order's reserved units left with its parcel: on hand and reserved both go down by quantity."""

    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int
    on_hand: int
    reserved: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StockReturned(Event):
    """Returned units of an order went back on hand."""

    aggregate_field: ClassVar[str] = "sku"

    sku: str
    order_id: str
    quantity: int
    on_hand: int


# --- shipping.events (key: order id) -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ShipmentPending(Event):
    """The shipping service noted a placed order (and its customer): a shipment is created once it is confirmed."""

    order_id: str
    customer_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ShipmentCreated(Event):
    order_id: str
    customer_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ShipmentDispatched(Event):
    order_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ShipmentDelivered(Event):
    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ShipmentCancelled(Event):
    """The order was rejected or cancelled before its shipment was dispatched: nothing will be sent."""

    order_id: str
    reason: str


ORDER_EVENTS: tuple[type[Event], ...] = (
    OrderPlaced,
    OrderPaymentUpdated,
    OrderLineReservationUpdated,
    OrderConfirmed,
    OrderRejected,
    OrderCancelled,
    OrderShipped,
    OrderDelivered,
    OrderReturned,
)
PAYMENT_EVENTS: tuple[type[Event], ...] = (
    PaymentAuthorized,
    PaymentDeclined,
    PaymentVoided,
    PaymentRefunded,
    PaymentCaptured,
)
INVENTORY_EVENTS: tuple[type[Event], ...] = (
    StockAdded,
    StockReserved,
    StockReservationRejected,
    StockReleased,
    StockShipped,
    StockReturned,
)
SHIPPING_EVENTS: tuple[type[Event], ...] = (
    ShipmentCreated,
    ShipmentDispatched,
    ShipmentDelivered,
    ShipmentPending,
    ShipmentCancelled,
)
ALL_EVENTS: tuple[type[Event], ...] = ORDER_EVENTS + PAYMENT_EVENTS + INVENTORY_EVENTS + SHIPPING_EVENTS
