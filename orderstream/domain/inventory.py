"""Inventory: pure deciders for the two stages of the inventory service. No Kafka, no clock, no randomness.

Stage 1, per ORDER (keyed by order id): react_to_order(order event, OrderLinesState) -> OrderReaction. It mirrors the
order events it acts on (OrderPlaced, OrderRejected, OrderCancelled, OrderShipped, OrderReturned) into its changelog,
and re-keys the order's lines by SKU: ReserveStock per line when the order is placed, ReleaseStock per line (once) when
an order it placed is rejected or cancelled, ShipStock per line (once) when its dispatch is accepted, and ReturnStock
per returned line of an OrderReturned that restocks. Every other order event, and every repeat, produces nothing.

Stage 2, per SKU (keyed by SKU, so one writer decides every change of a SKU one after the other):
decide(message, StockState, Context) -> events | Rejection, and evolve(state, event) -> state. The invariant, under
any order of messages: 0 <= reserved <= on_hand, i.e. available = on_hand - reserved never goes below 0.
- RestockSku   -> StockAdded, or a Rejection (invalid input: the caller's reply says why).
- ReserveStock -> StockReserved when available >= quantity, else StockReservationRejected (naming what is available).
                  An order that already holds a reservation of the SKU gets nothing new.
- ReleaseStock -> StockReleased of what the order holds (whatever the message's quantity), only if it holds a
                  reservation of the SKU; a release of a rejected, released or unknown reservation changes nothing.
- ShipStock    -> StockShipped of what the order holds: on hand and reserved both go down by it (the units left with
                  the parcel); nothing when the order holds no reservation of the SKU (shipped already).
- ReturnStock  -> StockReturned: the returned units go back on hand.
So on hand = restocked - shipped + restocked returns, and reserved = the sum of the open reservations.
Event and command ids are name-based UUIDs of the aggregate, version (or line) and cause, so deciding the same input on
the same state twice yields identical output.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from orderstream.domain import context as domain_context
from orderstream.domain.commands import Command, ReleaseStock, ReserveStock, RestockSku, ReturnStock, ShipStock
from orderstream.domain.events import (
    Event,
    OrderCancelled,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
    StockAdded,
    StockReleased,
    StockReservationRejected,
    StockReserved,
    StockReturned,
    StockShipped,
)
from orderstream.domain.validation import ValidationError, check_id, check_quantity, check_stock_quantity

_NAMESPACE = uuid.UUID("0b7f6c52-58c1-4f0e-9d1c-7a2e8f3b9c11")
MAX_ON_HAND = 2**53  # far below the wire's long; exact in every JSON reader

# --- stage 1: the order's lines, re-keyed by SKU -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderLinesState:
    """What stage 1 remembers of one order: its lines (quantity per SKU), whether it was placed and whether its stock
    was released. version is that of the last order event it mirrored (order versions, so not contiguous here)."""

    order_id: str
    version: int = 0
    lines: tuple[tuple[str, int], ...] = ()  # (sku, quantity), one entry per SKU
    placed: bool = False
    released: bool = False
    shipped: bool = False


@dataclass(frozen=True, slots=True)
class OrderReaction:
    """What one order event leads to: the events to mirror into stage 1's changelog, the commands to re-key by SKU."""

    mirror: tuple[Event, ...] = ()
    commands: tuple[ReserveStock | ReleaseStock | ShipStock | ReturnStock, ...] = ()


class EvolveError(ValueError):
    """An event does not fit the state (wrong key, version out of order, numbers that do not add up): the stream is
    corrupt or misrouted."""


def order_initial(order_id: str) -> OrderLinesState:
    return OrderLinesState(order_id=order_id)


def react_to_order(event: Event, state: OrderLinesState, issued_at: datetime) -> OrderReaction:
    """Stage 1's decision on one order event. Pure: issued_at is the only time it uses."""
    if getattr(event, "order_id", None) != state.order_id or event.version <= state.version:
        return OrderReaction()  # another order's (the caller checks keys) or a repeat / older event
    if isinstance(event, OrderPlaced):
        if state.placed:
            return OrderReaction()
        lines = _by_sku((line.sku, line.quantity) for line in event.lines)
        return OrderReaction(
            (event,), tuple(_line_command(ReserveStock, event, sku, qty, issued_at) for sku, qty in lines)
        )
    if isinstance(event, (OrderRejected, OrderCancelled)):
        if not state.placed or state.released or state.shipped:
            return OrderReaction()
        return OrderReaction(
            (event,), tuple(_line_command(ReleaseStock, event, sku, qty, issued_at) for sku, qty in state.lines)
        )
    if isinstance(event, OrderShipped):
        if not state.placed or state.released or state.shipped:
            return OrderReaction()
        return OrderReaction(
            (event,), tuple(_line_command(ShipStock, event, sku, qty, issued_at) for sku, qty in state.lines)
        )
    if isinstance(event, OrderReturned):
        if not state.shipped or not event.restock:
            return OrderReaction()  # nothing went out through this stage, or the units do not go back (damaged)
        returned = _by_sku((line.sku, line.quantity) for line in event.lines)
        return OrderReaction(
            (event,), tuple(_line_command(ReturnStock, event, sku, qty, issued_at) for sku, qty in returned)
        )
    return OrderReaction()


def order_evolve(state: OrderLinesState, event: Event) -> OrderLinesState:
    """Stage 1's state after one mirrored order event."""
    if getattr(event, "order_id", None) != state.order_id:
        raise EvolveError(f"order {state.order_id}: {event.type_name} belongs to {getattr(event, 'order_id', None)}")
    if event.version <= state.version:
        raise EvolveError(f"order {state.order_id}: {event.type_name} v{event.version} arrived after v{state.version}")
    if isinstance(event, OrderPlaced):
        return replace(
            state, version=event.version, placed=True, lines=_by_sku((line.sku, line.quantity) for line in event.lines)
        )
    if isinstance(event, (OrderRejected, OrderCancelled)):
        return replace(state, version=event.version, released=True)
    if isinstance(event, OrderShipped):
        return replace(state, version=event.version, shipped=True)
    if isinstance(event, OrderReturned):
        return replace(state, version=event.version)
    raise EvolveError(f"order {state.order_id}: {event.type_name} is not mirrored by the inventory service")


def _by_sku(lines: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Quantities summed per SKU, in first-seen order (an order validated by the order service has one line per SKU;
    this keeps one reservation per (order, SKU) even if it had not)."""
    totals: dict[str, int] = {}
    for sku, quantity in lines:
        totals[sku] = totals.get(sku, 0) + quantity
    return tuple(totals.items())


def _line_command(
    kind: type[ReserveStock] | type[ReleaseStock] | type[ShipStock] | type[ReturnStock],
    event: Event,
    sku: str,
    quantity: int,
    issued_at: datetime,
):
    command_id = str(uuid.uuid5(_NAMESPACE, f"{kind.__name__}/{event.order_id}/{sku}/{event.event_id}"))  # type: ignore[attr-defined]
    return kind(
        command_id=command_id,
        issued_at=issued_at,
        correlation_id=event.correlation_id,
        sku=sku,
        order_id=event.order_id,  # type: ignore[attr-defined]
        quantity=quantity,
    )


# --- stage 2: stock per SKU --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockState:
    """One SKU's stock. reserved is the sum of reservations (order id -> quantity held). The reservations dict is
    never changed in place: evolve builds a new one (so a state can be shared and cached safely)."""

    sku: str
    version: int = 0
    on_hand: int = 0
    reserved: int = 0
    reservations: Mapping[str, int] = field(default_factory=dict)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class Rejection:
    """A RestockSku the SKU refused: why, and the version the SKU is at."""

    reason: str
    current_version: int


class Context(domain_context.Context):
    """When, on behalf of which workflow and cause (the command id); stock event ids are in the inventory namespace."""

    __slots__ = ()
    namespace = _NAMESPACE


Decision = tuple[Event, ...] | Rejection


def stock_initial(sku: str) -> StockState:
    return StockState(sku=sku)


def decide(message: Command, state: StockState, context: Context) -> Decision:
    """The events a stock command produces on this SKU (possibly none), or why a restock is refused. Pure."""
    if getattr(message, "sku", None) != state.sku:
        return Rejection(
            f"{message.type_name} is for sku {getattr(message, 'sku', None)!r}, not {state.sku!r}", state.version
        )
    if isinstance(message, RestockSku):
        return _restock(message, state, context)
    if isinstance(message, ReserveStock):
        return _reserve(message, state, context)
    if isinstance(message, ReleaseStock):
        return _release(message, state, context)
    if isinstance(message, ShipStock):
        return _ship(message, state, context)
    if isinstance(message, ReturnStock):
        return _return(message, state, context)
    return Rejection(f"the inventory does not handle {message.type_name}", state.version)


def _restock(command: RestockSku, state: StockState, context: Context) -> Decision:
    try:
        check_id("sku", command.sku)
        check_id("command id", command.command_id)
        check_stock_quantity(command.sku, command.quantity)
    except ValidationError as exc:
        return Rejection(str(exc), state.version)
    if state.on_hand + command.quantity > MAX_ON_HAND:
        return Rejection(f"sku {state.sku} would hold more than {MAX_ON_HAND} units", state.version)
    return (_event(StockAdded, state, context, quantity=command.quantity, on_hand=state.on_hand + command.quantity),)


def _reserve(command: ReserveStock, state: StockState, context: Context) -> Decision:
    if command.order_id in state.reservations:
        return ()  # this order already holds its reservation of this SKU
    try:
        check_id("order id", command.order_id)
        check_quantity(state.sku, command.quantity)
    except ValidationError as exc:
        return (_rejected(command, state, context, f"invalid reservation: {exc}"),)
    if state.available < command.quantity:
        return (
            _rejected(
                command, state, context, f"only {state.available} of {state.sku} available, {command.quantity} wanted"
            ),
        )
    return (
        _event(
            StockReserved,
            state,
            context,
            order_id=command.order_id,
            quantity=command.quantity,
            on_hand=state.on_hand,
            reserved=state.reserved + command.quantity,
        ),
    )


def _release(command: ReleaseStock, state: StockState, context: Context) -> Decision:
    held = state.reservations.get(command.order_id)
    if held is None:
        return ()  # nothing reserved for this order (rejected, released already, or never asked): nothing to give back
    return (
        _event(
            StockReleased,
            state,
            context,
            order_id=command.order_id,
            quantity=held,
            on_hand=state.on_hand,
            reserved=state.reserved - held,
        ),
    )


def _ship(command: ShipStock, state: StockState, context: Context) -> Decision:
    held = state.reservations.get(command.order_id)
    if held is None:
        return ()  # nothing reserved for this order (shipped already, or never reserved): nothing leaves
    return (
        _event(
            StockShipped,
            state,
            context,
            order_id=command.order_id,
            quantity=held,
            on_hand=state.on_hand - held,
            reserved=state.reserved - held,
        ),
    )


def _return(command: ReturnStock, state: StockState, context: Context) -> Decision:
    try:
        check_id("order id", command.order_id)
        check_quantity(state.sku, command.quantity)
    except ValidationError as exc:
        return Rejection(f"invalid return: {exc}", state.version)
    if state.on_hand + command.quantity > MAX_ON_HAND:
        return Rejection(f"sku {state.sku} would hold more than {MAX_ON_HAND} units", state.version)
    return (
        _event(
            StockReturned,
            state,
            context,
            order_id=command.order_id,
            quantity=command.quantity,
            on_hand=state.on_hand + command.quantity,
        ),
    )


def _rejected(command: ReserveStock, state: StockState, context: Context, reason: str) -> StockReservationRejected:
    return _event(
        StockReservationRejected,
        state,
        context,
        order_id=command.order_id,
        quantity=command.quantity,
        available=state.available,
        reason=reason,
    )


def _event(kind, state: StockState, context: Context, **fields):
    version = state.version + 1
    return kind(
        event_id=context.event_id(state.sku, version),
        version=version,
        occurred_at=context.occurred_at,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        sku=state.sku,
        **fields,
    )


def stock_evolve(state: StockState, event: Event) -> StockState:
    """The SKU's state after one of its events. Checks the event continues the stream (version + 1) and that the
    numbers it carries agree with the fold: a stream that breaks the invariant is refused, never folded."""
    if getattr(event, "sku", None) != state.sku:
        raise EvolveError(f"sku {state.sku}: {event.type_name} belongs to {getattr(event, 'sku', None)}")
    if event.version != state.version + 1:
        raise EvolveError(
            f"sku {state.sku}: {event.type_name} has version {event.version}, expected {state.version + 1}"
        )
    if isinstance(event, StockAdded):
        after = replace(state, version=event.version, on_hand=state.on_hand + event.quantity)
        _agree(after, event, on_hand=event.on_hand)
    elif isinstance(event, StockReserved):
        if event.order_id in state.reservations:
            raise EvolveError(f"sku {state.sku}: order {event.order_id} reserved twice (v{event.version})")
        reservations = {**state.reservations, event.order_id: event.quantity}
        after = replace(
            state, version=event.version, reserved=state.reserved + event.quantity, reservations=reservations
        )
        _agree(after, event, on_hand=event.on_hand, reserved=event.reserved)
    elif isinstance(event, StockReleased):
        if state.reservations.get(event.order_id) != event.quantity:
            raise EvolveError(
                f"sku {state.sku}: release of {event.quantity} for order {event.order_id}, which holds "
                f"{state.reservations.get(event.order_id)} (v{event.version})"
            )
        reservations = {k: v for k, v in state.reservations.items() if k != event.order_id}
        after = replace(
            state, version=event.version, reserved=state.reserved - event.quantity, reservations=reservations
        )
        _agree(after, event, on_hand=event.on_hand, reserved=event.reserved)
    elif isinstance(event, StockShipped):
        if state.reservations.get(event.order_id) != event.quantity:
            raise EvolveError(
                f"sku {state.sku}: {event.quantity} shipped for order {event.order_id}, which holds "
                f"{state.reservations.get(event.order_id)} (v{event.version})"
            )
        reservations = {k: v for k, v in state.reservations.items() if k != event.order_id}
        after = replace(
            state,
            version=event.version,
            on_hand=state.on_hand - event.quantity,
            reserved=state.reserved - event.quantity,
            reservations=reservations,
        )
        _agree(after, event, on_hand=event.on_hand, reserved=event.reserved)
    elif isinstance(event, StockReturned):
        if event.quantity <= 0:
            raise EvolveError(f"sku {state.sku}: a return of {event.quantity} units (v{event.version})")
        after = replace(state, version=event.version, on_hand=state.on_hand + event.quantity)
        _agree(after, event, on_hand=event.on_hand)
    elif isinstance(event, StockReservationRejected):
        after = replace(state, version=event.version)
    else:
        raise EvolveError(f"sku {state.sku}: {event.type_name} is not an inventory event")
    if not 0 <= after.reserved <= after.on_hand:
        raise EvolveError(
            f"sku {state.sku}: v{event.version} leaves reserved {after.reserved} of on hand {after.on_hand}"
        )
    return after


def _agree(state: StockState, event: Event, **expected: int) -> None:
    for name, value in expected.items():
        if getattr(state, name) != value:
            raise EvolveError(
                f"sku {state.sku}: {event.type_name} v{event.version} says {name} {value}, "
                f"the stream adds up to {getattr(state, name)}"
            )


def stock_fold(state: StockState, events: Iterable[Event]) -> StockState:
    for event in events:
        state = stock_evolve(state, event)
    return state


def reservation_result_key(event: Event) -> str | None:
    """The order id a stock event answers (StockReserved, StockReservationRejected, StockReleased), else None."""
    if isinstance(event, (StockReserved, StockReservationRejected, StockReleased)):
        return event.order_id
    return None
