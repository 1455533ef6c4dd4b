"""The Order aggregate: a pure decider. No Kafka, no clock, no randomness.

    decide(message, state, context) -> tuple of new events | Rejection
    evolve(state, event) -> state

`message` is a command (PlaceOrder, CancelOrder, ShipOrder, DeliverOrder, ReturnOrder) or an event of another service
the order reacts to (payments, inventory results, shipping). The lifecycle is

    PLACED -> CONFIRMED -> SHIPPED -> DELIVERED -> PARTIALLY_RETURNED -> RETURNED
       |          |                      +-----------------------------> RETURNED
       +----------+--> CANCELLED        PLACED --> REJECTED (payment declined or a line could not be reserved)

and every other transition is rejected. The order decides its own dispatch (ShipOrder -> OrderShipped; the shipping,
payment and inventory services carry it out), so a cancel and a ship of one order are decided one after the other by
its single writer: once the dispatch is accepted, a cancel is refused (a return is the way back). A return takes back
at most what was delivered and not returned yet, line by line.

An order is CONFIRMED once its payment is authorized AND every line is reserved. Reactions to other services' events
are recorded (OrderPaymentUpdated, OrderLineReservationUpdated) even after the order ended, so compensation
(voiding a payment, releasing stock) can be driven from the order's stream.

The caller passes a Context: the event time, correlation and causation ids. Event ids are derived from the causation
id and the version (a name-based UUID), so deciding the same input on the same state twice yields identical events.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

from orderstream.domain import context as domain_context
from orderstream.domain.commands import (
    CancelOrder,
    Command,
    DeliverOrder,
    PlaceOrder,
    ReturnItem,
    ReturnOrder,
    ShipOrder,
)
from orderstream.domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderLineReservationUpdated,
    OrderPaymentUpdated,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentStatus,
    PaymentVoided,
    ReservationStatus,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentPending,
    StockReleased,
    StockReservationRejected,
    StockReserved,
)
from orderstream.domain.validation import (
    MAX_LINES_PER_ORDER,
    ValidationError,
    check_currency,
    check_id,
    check_quantity,
    check_reason,
    check_unit_price,
)

_EVENT_ID_NAMESPACE = uuid.UUID("6f1c1f9e-3b0a-4d59-9a57-3c6b1f0e2a41")


class OrderStatus(enum.Enum):
    PLACED = "PLACED"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    PARTIALLY_RETURNED = "PARTIALLY_RETURNED"
    RETURNED = "RETURNED"


CANCELLABLE = frozenset({OrderStatus.PLACED, OrderStatus.CONFIRMED})
DELIVERED_OR_LATER = frozenset({OrderStatus.DELIVERED, OrderStatus.PARTIALLY_RETURNED, OrderStatus.RETURNED})
RETURNABLE = frozenset({OrderStatus.DELIVERED, OrderStatus.PARTIALLY_RETURNED})


class RejectionCode(enum.Enum):
    INVALID = "invalid"  # the input broke a validation rule
    NOT_FOUND = "not_found"  # no such order
    ALREADY_EXISTS = "already_exists"  # PlaceOrder for an order id in use
    VERSION_CONFLICT = "version_conflict"  # expected_version is not the current version
    ILLEGAL_TRANSITION = "illegal_transition"  # the order's status does not allow it


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message the order refused: why, and the version the order was at (0 when it does not exist)."""

    reason: str
    current_version: int
    code: RejectionCode


class Context(domain_context.Context):
    """When, and on behalf of which workflow and cause; order event ids are in the order namespace."""

    __slots__ = ()
    namespace = _EVENT_ID_NAMESPACE


@dataclass(frozen=True, slots=True)
class OrderState:
    """Everything the decider needs to know about one order. version 0 and status None: the order does not exist."""

    order_id: str
    version: int = 0
    status: OrderStatus | None = None
    customer_id: str = ""
    currency: str = ""
    lines: tuple[OrderLine, ...] = ()
    total_minor: int = 0
    payment: PaymentStatus = PaymentStatus.PENDING
    reservations: tuple[tuple[str, ReservationStatus], ...] = ()  # (sku, status), in line order, once known
    returned: tuple[tuple[str, int], ...] = ()  # (sku, units returned so far), in the order first returned

    @property
    def exists(self) -> bool:
        return self.status is not None

    def reservation_of(self, sku: str) -> ReservationStatus | None:
        return dict(self.reservations).get(sku)

    def has_line(self, sku: str) -> bool:
        return any(line.sku == sku for line in self.lines)

    def returned_of(self, sku: str) -> int:
        return dict(self.returned).get(sku, 0)

    def returnable(self) -> tuple[OrderLine, ...]:
        """What is delivered and not returned yet, per line (quantity > 0 only), at the order's prices."""
        left = (replace(line, quantity=line.quantity - self.returned_of(line.sku)) for line in self.lines)
        return tuple(line for line in left if line.quantity > 0)

    @property
    def fully_reserved(self) -> bool:
        known = dict(self.reservations)
        return all(known.get(line.sku) is ReservationStatus.RESERVED for line in self.lines)


def initial_state(order_id: str) -> OrderState:
    return OrderState(order_id=order_id)


# --- validation (shared with the CLI, which checks before producing anything) -----------------------------------


def validate_place_order(command: PlaceOrder) -> None:
    """Raise ValidationError naming the first broken rule."""
    check_id("order id", command.order_id)
    check_id("customer id", command.customer_id)
    check_id("command id", command.command_id)
    check_currency(command.currency)
    if command.channel is not None:
        check_id("channel", command.channel)
    if not command.lines:
        raise ValidationError("an order needs at least one line (--item SKU:QTY:PRICE)")
    if len(command.lines) > MAX_LINES_PER_ORDER:
        raise ValidationError(f"an order has at most {MAX_LINES_PER_ORDER} lines, got {len(command.lines)}")
    seen: set[str] = set()
    for line in command.lines:
        check_id("sku", line.sku)
        check_quantity(line.sku, line.quantity)
        check_unit_price(line.sku, line.unit_price_minor)
        if line.sku in seen:
            raise ValidationError(f"sku {line.sku} appears on two lines; put the whole quantity on one line")
        seen.add(line.sku)


def validate_cancel_order(command: CancelOrder) -> None:
    check_id("order id", command.order_id)
    check_id("command id", command.command_id)
    check_reason(command.reason)
    if command.expected_version is not None and command.expected_version < 0:
        raise ValidationError(f"expected version must be 0 or more, got {command.expected_version}")


def validate_ship_order(command: ShipOrder) -> None:
    check_id("order id", command.order_id)
    check_id("command id", command.command_id)
    check_id("carrier", command.carrier)
    check_id("tracking number", command.tracking_number)
    if command.expected_version is not None and command.expected_version < 0:
        raise ValidationError(f"expected version must be 0 or more, got {command.expected_version}")


def validate_deliver_order(command: DeliverOrder) -> None:
    check_id("order id", command.order_id)
    check_id("command id", command.command_id)


def validate_return_order(command: ReturnOrder) -> None:
    check_id("order id", command.order_id)
    check_id("command id", command.command_id)
    check_reason(command.reason)
    if len(command.items) > MAX_LINES_PER_ORDER:
        raise ValidationError(f"a return has at most {MAX_LINES_PER_ORDER} items, got {len(command.items)}")
    seen: set[str] = set()
    for item in command.items:
        check_id("sku", item.sku)
        check_quantity(item.sku, item.quantity)
        if item.sku in seen:
            raise ValidationError(f"sku {item.sku} appears twice in the return; put the whole quantity on one item")
        seen.add(item.sku)


# --- decide ------------------------------------------------------------------------------------------------------

Decision = tuple[Event, ...] | Rejection


def decide(message: Command | Event, state: OrderState, context: Context) -> Decision:
    """The events a command or a reaction produces on this order, or why it is refused. Pure."""
    handler = _HANDLERS.get(type(message))
    if handler is None:
        return Rejection(f"the order does not handle {type(message).__name__}", state.version, RejectionCode.INVALID)
    return handler(message, state, _Emitter(state, context))


class _Emitter:
    """Numbers new events state.version+1, +2, ... and stamps them with the context's metadata."""

    def __init__(self, state: OrderState, context: Context) -> None:
        self.state = state
        self.context = context
        self.events: list[Event] = []

    def __call__(self, event_type: type[Event], **fields: object) -> _Emitter:
        version = self.state.version + len(self.events) + 1
        order_id = self.state.order_id
        self.events.append(
            event_type(
                event_id=self.context.event_id(order_id, version),
                version=version,
                occurred_at=self.context.occurred_at,
                correlation_id=self.context.correlation_id,
                causation_id=self.context.causation_id,
                order_id=order_id,
                **fields,
            )
        )
        return self

    def done(self) -> tuple[Event, ...]:
        return tuple(self.events)

    def current(self) -> OrderState:
        return fold(self.state, self.events)


def _reject(state: OrderState, code: RejectionCode, reason: str) -> Rejection:
    return Rejection(reason, state.version, code)


def _place(command: PlaceOrder, state: OrderState, emit: _Emitter) -> Decision:
    try:
        validate_place_order(command)
    except ValidationError as exc:
        return _reject(state, RejectionCode.INVALID, str(exc))
    if state.exists:
        return _reject(
            state, RejectionCode.ALREADY_EXISTS, f"order {state.order_id} already exists (version {state.version})"
        )
    total = sum(line.amount_minor for line in command.lines)
    return emit(
        OrderPlaced,
        customer_id=command.customer_id,
        currency=command.currency,
        lines=command.lines,
        total_minor=total,
        channel=command.channel,
    ).done()


def _cancel(command: CancelOrder, state: OrderState, emit: _Emitter) -> Decision:
    try:
        validate_cancel_order(command)
    except ValidationError as exc:
        return _reject(state, RejectionCode.INVALID, str(exc))
    if not state.exists:
        return _reject(state, RejectionCode.NOT_FOUND, f"order {state.order_id} does not exist")
    if command.expected_version is not None and command.expected_version != state.version:
        return _reject(
            state,
            RejectionCode.VERSION_CONFLICT,
            f"version conflict: expected version {command.expected_version}, "
            f"order {state.order_id} is at {state.version}",
        )
    if state.status not in CANCELLABLE:
        reason = f"order {state.order_id} is {state.status.value}: it cannot be cancelled"
        if state.status is OrderStatus.SHIPPED:
            reason += ", its dispatch was accepted (return it once it is delivered)"
        elif state.status in RETURNABLE:
            reason += " (return it instead)"
        return _reject(state, RejectionCode.ILLEGAL_TRANSITION, reason)
    return emit(OrderCancelled, reason=command.reason or "cancelled by request").done()


def _ship(command: ShipOrder, state: OrderState, emit: _Emitter) -> Decision:
    """The dispatch decision: only a CONFIRMED order ships, decided on the order's latest state (after any cancel)."""
    try:
        validate_ship_order(command)
    except ValidationError as exc:
        return _reject(state, RejectionCode.INVALID, str(exc))
    refused = _check_version(command.expected_version, state)
    if refused is not None:
        return refused
    if state.status is not OrderStatus.CONFIRMED:
        return _reject(state, _code(state), _cannot(state, "be shipped"))
    return emit(OrderShipped, carrier=command.carrier, tracking_number=command.tracking_number).done()


def _deliver(command: DeliverOrder, state: OrderState, emit: _Emitter) -> Decision:
    try:
        validate_deliver_order(command)
    except ValidationError as exc:
        return _reject(state, RejectionCode.INVALID, str(exc))
    if state.status is not OrderStatus.SHIPPED:
        return _reject(state, _code(state), _cannot(state, "be delivered"))
    return emit(OrderDelivered).done()


def _return(command: ReturnOrder, state: OrderState, emit: _Emitter) -> Decision:
    """Take back what was delivered and not returned yet: every such line (no items) or the items named."""
    try:
        validate_return_order(command)
    except ValidationError as exc:
        return _reject(state, RejectionCode.INVALID, str(exc))
    if state.status not in RETURNABLE:
        if state.status is OrderStatus.RETURNED:
            return _reject(
                state, RejectionCode.ILLEGAL_TRANSITION, f"order {state.order_id} was returned whole: nothing is left"
            )
        return _reject(state, _code(state), _cannot(state, "be returned (only a delivered order can)"))
    left = {line.sku: line for line in state.returnable()}
    lines = _returned_lines(command.items, left) if command.items else tuple(left.values())
    if isinstance(lines, str):
        return _reject(state, RejectionCode.ILLEGAL_TRANSITION, f"order {state.order_id}: {lines}")
    fully = all(line.quantity == left[line.sku].quantity for line in lines) and len(lines) == len(left)
    return emit(
        OrderReturned,
        lines=lines,
        refund_minor=sum(line.amount_minor for line in lines),
        restock=command.restock,
        reason=command.reason or "returned by the customer",
        fully_returned=fully,
    ).done()


def _returned_lines(items: tuple[ReturnItem, ...], left: dict[str, OrderLine]) -> tuple[OrderLine, ...] | str:
    """The order lines the items take back, or why one of them asks for more than is left."""
    lines = []
    for item in items:
        line = left.get(item.sku)
        if line is None or item.quantity > line.quantity:
            have = 0 if line is None else line.quantity
            return f"cannot return {item.quantity} of {item.sku}: {have} delivered and not returned"
        lines.append(replace(line, quantity=item.quantity))
    return tuple(lines)


def _check_version(expected: int | None, state: OrderState) -> Rejection | None:
    if not state.exists:
        return _reject(state, RejectionCode.NOT_FOUND, f"order {state.order_id} does not exist")
    if expected is not None and expected != state.version:
        return _reject(
            state,
            RejectionCode.VERSION_CONFLICT,
            f"version conflict: expected version {expected}, order {state.order_id} is at {state.version}",
        )
    return None


def _code(state: OrderState) -> RejectionCode:
    return RejectionCode.ILLEGAL_TRANSITION if state.exists else RejectionCode.NOT_FOUND


def _payment(message: Event, state: OrderState, emit: _Emitter) -> Decision:
    if not state.exists:
        return _reject(state, RejectionCode.NOT_FOUND, f"order {state.order_id} does not exist")
    status = _PAYMENT_STATUS[type(message)]
    if state.payment is status:
        return ()  # already known (a repeated event): nothing new
    reason = getattr(message, "reason", "")
    emit(OrderPaymentUpdated, payment_status=status, reason=reason)
    if state.status is OrderStatus.PLACED:
        if status is PaymentStatus.DECLINED:
            emit(OrderRejected, reason=f"payment declined: {reason}" if reason else "payment declined")
        elif status is PaymentStatus.AUTHORIZED and emit.current().fully_reserved:
            emit(OrderConfirmed)
    return emit.done()


def _reservation(
    message: StockReserved | StockReservationRejected | StockReleased, state: OrderState, emit: _Emitter
) -> Decision:
    if not state.exists:
        return _reject(state, RejectionCode.NOT_FOUND, f"order {state.order_id} does not exist")
    if not state.has_line(message.sku):
        return _reject(state, RejectionCode.INVALID, f"order {state.order_id} has no line for sku {message.sku}")
    status = _RESERVATION_STATUS[type(message)]
    if state.reservation_of(message.sku) is status:
        return ()
    reason = getattr(message, "reason", "")
    emit(OrderLineReservationUpdated, sku=message.sku, reservation_status=status, reason=reason)
    if state.status is OrderStatus.PLACED:
        if status is ReservationStatus.REJECTED:
            emit(
                OrderRejected,
                reason=f"stock for {message.sku} unavailable: {reason}"
                if reason
                else f"stock for {message.sku} unavailable",
            )
        elif status is ReservationStatus.RESERVED:
            after = emit.current()
            if after.payment is PaymentStatus.AUTHORIZED and after.fully_reserved:
                emit(OrderConfirmed)
    return emit.done()


def _dispatched(message: ShipmentDispatched, state: OrderState, emit: _Emitter) -> Decision:
    """The shipping service carried out the dispatch this order accepted (nothing new), or - for a shipment dispatched
    before dispatches went through the order - the order follows it."""
    if state.status is OrderStatus.SHIPPED or state.status in DELIVERED_OR_LATER:
        return ()
    if state.status is not OrderStatus.CONFIRMED:
        return _reject(state, RejectionCode.ILLEGAL_TRANSITION, _cannot(state, "be shipped"))
    return emit(OrderShipped, carrier=message.carrier, tracking_number=message.tracking_number).done()


def _delivered(message: ShipmentDelivered, state: OrderState, emit: _Emitter) -> Decision:
    if state.status in DELIVERED_OR_LATER:
        return ()
    if state.status is not OrderStatus.SHIPPED:
        return _reject(state, RejectionCode.ILLEGAL_TRANSITION, _cannot(state, "be delivered"))
    return emit(OrderDelivered).done()


def _ignore(message: Event, state: OrderState, emit: _Emitter) -> Decision:
    return ()


def _cannot(state: OrderState, what: str) -> str:
    if not state.exists:
        return f"order {state.order_id} does not exist"
    if state.status is OrderStatus.CANCELLED:
        return f"order {state.order_id} was cancelled: it cannot {what}"
    return f"order {state.order_id} is {state.status.value}: it cannot {what}"


_PAYMENT_STATUS = {
    PaymentAuthorized: PaymentStatus.AUTHORIZED,
    PaymentDeclined: PaymentStatus.DECLINED,
    PaymentVoided: PaymentStatus.VOIDED,
    PaymentRefunded: PaymentStatus.REFUNDED,
}
_RESERVATION_STATUS = {
    StockReserved: ReservationStatus.RESERVED,
    StockReservationRejected: ReservationStatus.REJECTED,
    StockReleased: ReservationStatus.RELEASED,
}
_HANDLERS = {
    PlaceOrder: _place,
    CancelOrder: _cancel,
    ShipOrder: _ship,
    DeliverOrder: _deliver,
    ReturnOrder: _return,
    PaymentAuthorized: _payment,
    PaymentDeclined: _payment,
    PaymentVoided: _payment,
    PaymentRefunded: _payment,
    PaymentCaptured: _ignore,  # the capture of an accepted dispatch: the payment ledger and view keep the amounts
    StockReserved: _reservation,
    StockReservationRejected: _reservation,
    StockReleased: _reservation,
    ShipmentPending: _ignore,
    ShipmentCreated: _ignore,
    ShipmentCancelled: _ignore,  # the shipping service's own compensation: the order ended already
    ShipmentDispatched: _dispatched,
    ShipmentDelivered: _delivered,
}
HANDLED_TYPES: tuple[type, ...] = tuple(_HANDLERS)


# --- evolve ------------------------------------------------------------------------------------------------------


class EvolveError(ValueError):
    """An event does not fit the state (wrong order, wrong version): the stream is corrupt or misrouted."""


def evolve(state: OrderState, event: Event) -> OrderState:
    """The state after one of this order's events. Checks the event continues the stream (version + 1)."""
    if event.version != state.version + 1:
        raise EvolveError(
            f"order {state.order_id}: event {event.type_name} has version {event.version}, expected {state.version + 1}"
        )
    if getattr(event, "order_id", None) != state.order_id:
        raise EvolveError(
            f"order {state.order_id}: event {event.type_name} belongs to {getattr(event, 'order_id', None)}"
        )
    state = replace(state, version=event.version)
    match event:
        case OrderPlaced():
            return replace(
                state,
                status=OrderStatus.PLACED,
                customer_id=event.customer_id,
                currency=event.currency,
                lines=event.lines,
                total_minor=event.total_minor,
            )
        case OrderPaymentUpdated():
            return replace(state, payment=event.payment_status)
        case OrderLineReservationUpdated():
            known = dict(state.reservations)
            known[event.sku] = event.reservation_status
            return replace(state, reservations=tuple(known.items()))
        case OrderConfirmed():
            return replace(state, status=OrderStatus.CONFIRMED)
        case OrderRejected():
            return replace(state, status=OrderStatus.REJECTED)
        case OrderCancelled():
            return replace(state, status=OrderStatus.CANCELLED)
        case OrderShipped():
            return replace(state, status=OrderStatus.SHIPPED)
        case OrderDelivered():
            return replace(state, status=OrderStatus.DELIVERED)
        case OrderReturned():
            returned = dict(state.returned)
            for line in event.lines:
                returned[line.sku] = returned.get(line.sku, 0) + line.quantity
            status = OrderStatus.RETURNED if event.fully_returned else OrderStatus.PARTIALLY_RETURNED
            return replace(state, status=status, returned=tuple(returned.items()))
    raise EvolveError(f"order {state.order_id}: {event.type_name} is not an order event")


def fold(state: OrderState, events: Iterable[Event]) -> OrderState:
    for event in events:
        state = evolve(state, event)
    return state
