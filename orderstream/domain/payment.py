"""Payments: the pure deciders of the payment service's two stages. No Kafka, no clock, no randomness.

The credit limit is per customer, so it needs one writer per customer, while orders arrive keyed by order id. Hence two
stages, each a single writer for its own key:

1. Order stage (key: order id). Folds a mirror of the order events it needs (OrderPlaced, OrderConfirmed,
   OrderRejected, OrderCancelled, copied as they are). OrderPlaced asks for an AuthorizePayment of the order's total;
   the first OrderRejected / OrderCancelled of a placed order asks for a ReleasePayment (a refund if the order had been
   confirmed, else a void). Both commands are keyed by customer id.
2. Customer stage (key: customer id). Folds the customer's ledger of payment events. AuthorizePayment is authorized
   when the amount is within the per-order limit and the customer's outstanding authorizations (authorized, not yet
   released, in that currency) plus the amount are within the credit limit; otherwise declined with a reason naming
   the limit. ReleasePayment voids or refunds an order's authorization once; anything else changes nothing.

Limits apply per currency (minor units of the order's currency; there is no FX conversion).
Event ids derive from (customer, version, causation id) and command ids from (causing event id, command type), so
deciding the same input on the same state twice yields identical records.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from orderstream.domain import context as domain_context
from orderstream.domain.commands import AuthorizePayment, ReleasePayment
from orderstream.domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
)
from orderstream.domain.money import format_minor
from orderstream.domain.validation import ValidationError

_NAMESPACE = uuid.UUID("0c5e7a52-8f43-4b8e-9a0e-5d2f7c1b9e63")


class EvolveError(ValueError):
    """An event does not fit the state: the changelog is corrupt or misrouted."""


@dataclass(frozen=True, slots=True)
class PaymentLimits:
    """The payment rules, in minor units of the order's currency."""

    order_limit_minor: int
    credit_limit_minor: int


# --- the order stage (key: order id) ------------------------------------------------------------------------------

MIRRORED: tuple[type[Event], ...] = (OrderPlaced, OrderConfirmed, OrderRejected, OrderCancelled)


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    """What the order stage knows of one order: who pays how much, and whether it was confirmed or has ended.
    version is the order version of the last mirrored event (0: never placed)."""

    order_id: str
    version: int = 0
    customer_id: str = ""
    currency: str = ""
    total_minor: int = 0
    confirmed: bool = False
    ended: bool = False

    @property
    def placed(self) -> bool:
        return self.version > 0


@dataclass(frozen=True, slots=True)
class OrderStageDecision:
    """The order events to mirror (the stage's changelog) and the commands to send to the customer stage."""

    mirror: tuple[Event, ...] = ()
    requests: tuple[AuthorizePayment | ReleasePayment, ...] = ()


def decide_order(event: Event, state: PaymentOrder, now: datetime) -> OrderStageDecision:
    """React to one order event. Events the stage does not need, and repeats, change nothing. Pure."""
    if not isinstance(event, MIRRORED):
        return OrderStageDecision()
    if event.order_id != state.order_id:
        raise ValueError(f"order event {event.type_name} of {event.order_id} routed to order {state.order_id}")
    if state.placed and event.version <= state.version:
        return OrderStageDecision()  # already mirrored
    match event:
        case OrderPlaced():
            if state.placed:
                return OrderStageDecision()
            request = AuthorizePayment(
                command_id=_command_id(event, AuthorizePayment),
                issued_at=now,
                correlation_id=event.correlation_id,
                causation_id=event.event_id,
                order_id=event.order_id,
                customer_id=event.customer_id,
                amount_minor=event.total_minor,
                currency=event.currency,
            )
            return OrderStageDecision((event,), (request,))
        case OrderConfirmed():
            if not state.placed or state.ended or state.confirmed:
                return OrderStageDecision()
            return OrderStageDecision((event,))
        case _:  # OrderRejected | OrderCancelled
            if not state.placed or state.ended:
                return OrderStageDecision()
            what = "rejected" if isinstance(event, OrderRejected) else "cancelled"
            request = ReleasePayment(
                command_id=_command_id(event, ReleasePayment),
                issued_at=now,
                correlation_id=event.correlation_id,
                causation_id=event.event_id,
                order_id=event.order_id,
                customer_id=state.customer_id,
                refund=state.confirmed,
                reason=f"order {what}: {event.reason}" if event.reason else f"order {what}",
            )
            return OrderStageDecision((event,), (request,))


def evolve_order(state: PaymentOrder, event: Event) -> PaymentOrder:
    """The order stage's state after one mirrored order event (versions only grow: the mirror skips some)."""
    if getattr(event, "order_id", None) != state.order_id:
        raise EvolveError(
            f"order {state.order_id}: mirrored {event.type_name} belongs to {getattr(event, 'order_id', None)}"
        )
    if event.version <= state.version:
        raise EvolveError(
            f"order {state.order_id}: mirrored {event.type_name} has version {event.version}, not after {state.version}"
        )
    state = replace(state, version=event.version)
    match event:
        case OrderPlaced():
            return replace(state, customer_id=event.customer_id, currency=event.currency, total_minor=event.total_minor)
        case OrderConfirmed():
            return replace(state, confirmed=True)
        case OrderRejected() | OrderCancelled():
            return replace(state, ended=True)
    raise EvolveError(f"order {state.order_id}: the payment order stage does not mirror {event.type_name}")


def _command_id(event: Event, command_type: type) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{event.event_id}/{command_type.__name__}"))


# --- the customer stage (key: customer id) ------------------------------------------------------------------------


class LedgerStatus(enum.Enum):
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


_STATUS_OF = {
    PaymentAuthorized: LedgerStatus.AUTHORIZED,
    PaymentDeclined: LedgerStatus.DECLINED,
    PaymentVoided: LedgerStatus.VOIDED,
    PaymentRefunded: LedgerStatus.REFUNDED,
}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One order's payment as the customer's ledger has it."""

    amount_minor: int
    currency: str
    status: LedgerStatus


@dataclass(frozen=True, slots=True)
class CustomerLedger:
    """One customer's payments by order id, and the outstanding (authorized, not released) total per currency.

    The dicts are never changed in place: evolve builds new ones, so a state can be shared and copied freely."""

    customer_id: str
    version: int = 0
    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    outstanding: dict[str, int] = field(default_factory=dict)

    def outstanding_in(self, currency: str) -> int:
        return self.outstanding.get(currency, 0)


class Context(domain_context.Context):
    """When, and on behalf of which workflow and cause (the command being decided); ledger event ids are in the payment
    namespace."""

    __slots__ = ()
    namespace = _NAMESPACE


def decide_customer(
    command: AuthorizePayment | ReleasePayment, ledger: CustomerLedger, limits: PaymentLimits, context: Context
) -> tuple[Event, ...]:
    """The ledger events a payment command produces (none when it was decided before, or has nothing to release)."""
    if command.customer_id != ledger.customer_id:
        raise ValueError(
            f"{command.type_name} for customer {command.customer_id} routed to customer {ledger.customer_id}"
        )
    entry = ledger.entries.get(command.order_id)
    fields = dict(
        event_id=context.event_id(ledger.customer_id, ledger.version + 1),
        version=ledger.version + 1,
        occurred_at=context.occurred_at,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        order_id=command.order_id,
        customer_id=ledger.customer_id,
    )
    if isinstance(command, AuthorizePayment):
        if entry is not None:
            return ()  # this order's payment was decided already
        amount, currency = command.amount_minor, command.currency
        money = dict(amount_minor=amount, currency=currency)
        reason = decline_reason(ledger, amount, currency, limits)
        if reason is not None:
            return (PaymentDeclined(**fields, **money, reason=reason),)
        return (PaymentAuthorized(**fields, **money),)
    if isinstance(command, ReleasePayment):
        if entry is None or entry.status is not LedgerStatus.AUTHORIZED:
            return ()  # nothing authorized to release (declined, released already, or never asked for)
        kind = PaymentRefunded if command.refund else PaymentVoided
        return (kind(**fields, amount_minor=entry.amount_minor, currency=entry.currency, reason=command.reason),)
    raise ValueError(f"the payment customer stage does not handle {type(command).__name__}")


def decline_reason(ledger: CustomerLedger, amount_minor: int, currency: str, limits: PaymentLimits) -> str | None:
    """Why an authorization of amount_minor would break a limit, or None when it would not."""
    if amount_minor < 0:
        return f"amount {_money(amount_minor, currency)} is negative"
    if amount_minor > limits.order_limit_minor:
        return (
            f"order total {_money(amount_minor, currency)} is over the per-order limit of "
            f"{_money(limits.order_limit_minor, currency)}"
        )
    outstanding = ledger.outstanding_in(currency)
    if outstanding + amount_minor > limits.credit_limit_minor:
        return (
            f"customer {ledger.customer_id} has {_money(outstanding, currency)} authorized on open orders; "
            f"{_money(amount_minor, currency)} more would exceed the credit limit of "
            f"{_money(limits.credit_limit_minor, currency)}"
        )
    return None


def evolve_customer(ledger: CustomerLedger, event: Event) -> CustomerLedger:
    """The ledger after one of its payment events (which must continue the stream: version + 1)."""
    status = _STATUS_OF.get(type(event))
    if status is None:
        raise EvolveError(f"customer {ledger.customer_id}: {event.type_name} is not a payment event")
    if event.version != ledger.version + 1:
        raise EvolveError(
            f"customer {ledger.customer_id}: {event.type_name} has version {event.version}, "
            f"expected {ledger.version + 1}"
        )
    if event.customer_id != ledger.customer_id:
        raise EvolveError(f"customer {ledger.customer_id}: {event.type_name} belongs to customer {event.customer_id}")
    entries = dict(ledger.entries)
    outstanding = dict(ledger.outstanding)
    before = entries.get(event.order_id)
    if before is not None and before.status is LedgerStatus.AUTHORIZED:
        outstanding[before.currency] = outstanding.get(before.currency, 0) - before.amount_minor
    if status is LedgerStatus.AUTHORIZED:
        outstanding[event.currency] = outstanding.get(event.currency, 0) + event.amount_minor
    entries[event.order_id] = LedgerEntry(event.amount_minor, event.currency, status)
    return CustomerLedger(ledger.customer_id, event.version, entries, {c: a for c, a in outstanding.items() if a})


def _money(amount_minor: int, currency: str) -> str:
    try:
        return format_minor(amount_minor, currency)
    except ValidationError:
        return f"{amount_minor} {currency} minor units"
