"""Shipments: a pure decider, one shipment per order. No Kafka, no clock, no randomness.

    decide(message, state, context) -> tuple of new events | Rejection
    evolve(state, event) -> state

Messages are order events (what the order service decided). The order is the single writer of its dispatch (ShipOrder
and DeliverOrder go to the order service), so the shipping service carries out only what the order accepted and a
cancelled order can never have a dispatched parcel:

    OrderPlaced    -> ShipmentPending (remembers the customer)
    OrderConfirmed -> ShipmentCreated            PENDING -> CREATED
    OrderShipped   -> ShipmentDispatched         PENDING or CREATED -> DISPATCHED
    OrderDelivered -> ShipmentDelivered          DISPATCHED -> DELIVERED
    OrderRejected / OrderCancelled -> ShipmentCancelled, while PENDING or CREATED (nothing was sent yet)

The old shipping commands (DispatchShipment, ConfirmDelivery on shipping.commands) are refused with a reason that
says where a dispatch is decided now. Order events that do
not apply (repeats, other types) change nothing. Event ids derive from (order id, version, causation id), so deciding
the same input on the same state twice yields identical events.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace

from orderstream.domain import context as domain_context
from orderstream.domain.commands import Command, ConfirmDelivery, DispatchShipment
from orderstream.domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentPending,
)
from orderstream.domain.order import Rejection, RejectionCode
from orderstream.domain.validation import check_id

_NAMESPACE = uuid.UUID("b3e0f4a6-2c1d-4f7e-8a59-7d6c3e2b1a90")


class ShipmentStatus(enum.Enum):
    PENDING = "PENDING"  # the order is placed, not confirmed yet
    CREATED = "CREATED"  # the order is confirmed: ready to dispatch
    DISPATCHED = "DISPATCHED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class EvolveError(ValueError):
    """An event does not fit the state (wrong order, wrong version): the stream is corrupt or misrouted."""


@dataclass(frozen=True, slots=True)
class ShipmentState:
    """One order's shipment. version 0 and status None: the shipping service has not seen the order."""

    order_id: str
    version: int = 0
    status: ShipmentStatus | None = None
    customer_id: str = ""
    carrier: str = ""
    tracking_number: str = ""
    cancel_reason: str = ""


class Context(domain_context.Context):
    """When, and on behalf of which workflow and cause; shipment event ids are in the shipping namespace."""

    __slots__ = ()
    namespace = _NAMESPACE


def initial_state(order_id: str) -> ShipmentState:
    return ShipmentState(order_id=order_id)


def validate_dispatch(command: DispatchShipment) -> None:
    """Raise ValidationError naming the first broken rule (the CLI checks this before producing)."""
    check_id("order id", command.order_id)
    check_id("command id", command.command_id)
    check_id("carrier", command.carrier)
    check_id("tracking number", command.tracking_number)


def validate_delivery(command: ConfirmDelivery) -> None:
    check_id("order id", command.order_id)
    check_id("command id", command.command_id)


Decision = tuple[Event, ...] | Rejection


def decide(message: Command | Event, state: ShipmentState, context: Context) -> Decision:
    """The shipment events a command or an order event produces, or why it is refused. Pure."""
    emit = _Emitter(state, context)
    match message:
        case DispatchShipment() | ConfirmDelivery():
            what = "dispatch" if isinstance(message, DispatchShipment) else "delivery"
            return Rejection(
                f"a {what} is decided by the order service now: send it to orders.commands (orderstream "
                f"{'ship' if what == 'dispatch' else 'deliver'} {state.order_id})",
                state.version,
                RejectionCode.INVALID,
            )
        case OrderShipped():
            if state.status in (ShipmentStatus.PENDING, ShipmentStatus.CREATED):
                return emit(ShipmentDispatched, carrier=message.carrier, tracking_number=message.tracking_number)
            if state.status in (ShipmentStatus.DISPATCHED, ShipmentStatus.DELIVERED):
                return ()  # dispatched already (an order that followed a shipment dispatched the old way)
            return _refuse(state, "be dispatched")
        case OrderDelivered():
            if state.status is ShipmentStatus.DISPATCHED:
                return emit(ShipmentDelivered)
            if state.status is ShipmentStatus.DELIVERED:
                return ()
            return _refuse(state, "be delivered")
        case OrderPlaced():
            return emit(ShipmentPending, customer_id=message.customer_id) if state.status is None else ()
        case OrderConfirmed():
            if state.status is ShipmentStatus.PENDING:
                return emit(ShipmentCreated, customer_id=state.customer_id)
            if state.status is None:
                return Rejection(
                    f"order {state.order_id} was confirmed but never seen placed", 0, RejectionCode.NOT_FOUND
                )
            return ()
        case OrderRejected() | OrderCancelled():
            if state.status in (ShipmentStatus.PENDING, ShipmentStatus.CREATED):
                what = "rejected" if isinstance(message, OrderRejected) else "cancelled"
                return emit(
                    ShipmentCancelled, reason=f"order {what}: {message.reason}" if message.reason else f"order {what}"
                )
            return ()
        case Event():
            return ()  # other order events do not concern the shipment
    return Rejection(
        f"the shipping service does not handle {type(message).__name__}", state.version, RejectionCode.INVALID
    )


def _refuse(state: ShipmentState, what: str) -> Rejection:
    """Why the shipment of this order cannot do `what` in its current state."""
    order = state.order_id
    status = state.status
    code = RejectionCode.ILLEGAL_TRANSITION
    if status is None:
        return Rejection(f"order {order} has no shipment (no such order): it cannot {what}", 0, RejectionCode.NOT_FOUND)
    if status is ShipmentStatus.PENDING:
        reason = f"order {order} is not confirmed yet (no shipment): it cannot {what}"
    elif status is ShipmentStatus.CANCELLED:
        reason = f"the shipment of order {order} was cancelled ({state.cancel_reason}): it cannot {what}"
    elif status is ShipmentStatus.CREATED:
        reason = f"the shipment of order {order} has not been dispatched yet: it cannot {what}"
    elif status is ShipmentStatus.DISPATCHED:
        reason = (
            f"the shipment of order {order} was already dispatched ({state.carrier} {state.tracking_number}): "
            f"it cannot {what}"
        )
    else:
        reason = f"the shipment of order {order} was already delivered: it cannot {what}"
    return Rejection(reason, state.version, code)


class _Emitter:
    def __init__(self, state: ShipmentState, context: Context) -> None:
        self.state = state
        self.context = context

    def __call__(self, event_type: type[Event], **fields: object) -> tuple[Event, ...]:
        version = self.state.version + 1
        order_id = self.state.order_id
        return (
            event_type(
                event_id=self.context.event_id(order_id, version),
                version=version,
                occurred_at=self.context.occurred_at,
                correlation_id=self.context.correlation_id,
                causation_id=self.context.causation_id,
                order_id=order_id,
                **fields,
            ),
        )


def evolve(state: ShipmentState, event: Event) -> ShipmentState:
    """The shipment after one of its events. Checks the event continues the stream (version + 1)."""
    if event.version != state.version + 1:
        raise EvolveError(
            f"shipment {state.order_id}: {event.type_name} has version {event.version}, expected {state.version + 1}"
        )
    if getattr(event, "order_id", None) != state.order_id:
        raise EvolveError(f"shipment {state.order_id}: {event.type_name} belongs to {getattr(event, 'order_id', None)}")
    state = replace(state, version=event.version)
    match event:
        case ShipmentPending():
            return replace(state, status=ShipmentStatus.PENDING, customer_id=event.customer_id)
        case ShipmentCreated():
            return replace(state, status=ShipmentStatus.CREATED, customer_id=event.customer_id or state.customer_id)
        case ShipmentDispatched():
            return replace(
                state, status=ShipmentStatus.DISPATCHED, carrier=event.carrier, tracking_number=event.tracking_number
            )
        case ShipmentDelivered():
            return replace(state, status=ShipmentStatus.DELIVERED)
        case ShipmentCancelled():
            return replace(state, status=ShipmentStatus.CANCELLED, cancel_reason=event.reason)
    raise EvolveError(f"shipment {state.order_id}: {event.type_name} is not a shipment event")
