"""Payments: the pure deciders of the payment service's two stages. No Kafka, no clock, no randomness.

The credit limit is per customer, so it needs one writer per customer, while orders arrive keyed by order id. Hence two
stages, each a single writer for its own key:

1. Order stage (key: order id). Folds a mirror of the order events it needs (OrderPlaced, OrderConfirmed,
   OrderRejected, OrderCancelled, OrderShipped, OrderReturned, copied as they are). OrderPlaced asks for an
   AuthorizePayment of the order's total; the first OrderRejected / OrderCancelled of a placed order asks for a
   ReleasePayment; OrderShipped (the accepted dispatch) asks for a CapturePayment; each OrderReturned asks for a
   RefundPayment of the returned lines' amount. All commands are keyed by customer id.
2. Customer stage (key: customer id). Folds the customer's ledger of payment events. AuthorizePayment is authorized
   when the amount is within the per-order limit and the customer's outstanding authorizations (authorized, neither
   captured nor released, in that currency) plus the amount are within the credit limit; otherwise declined with a
   reason naming the limit. CapturePayment captures an authorization once; ReleasePayment voids an authorization never
   captured (nothing was taken, so nothing is refunded); RefundPayment gives back at most what was captured and not
   refunded yet. Anything else changes nothing. A captured or voided authorization no longer counts against the limit.

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
from orderstream.domain.commands import AuthorizePayment, CapturePayment, RefundPayment, ReleasePayment
from orderstream.domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
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

MIRRORED: tuple[type[Event], ...] = (
    OrderPlaced,
    OrderConfirmed,
    OrderRejected,
    OrderCancelled,
    OrderShipped,
    OrderReturned,
)
PaymentRequest = AuthorizePayment | ReleasePayment | CapturePayment | RefundPayment


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
    shipped: bool = False

    @property
    def placed(self) -> bool:
        return self.version > 0


@dataclass(frozen=True, slots=True)
class OrderStageDecision:
    """The order events to mirror (the stage's changelog) and the commands to send to the customer stage."""

    mirror: tuple[Event, ...] = ()
    requests: tuple[PaymentRequest, ...] = ()


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
        case OrderShipped():
            if not state.placed or state.ended or state.shipped:
                return OrderStageDecision()
            capture = CapturePayment(
                command_id=_command_id(event, CapturePayment),
                issued_at=now,
                correlation_id=event.correlation_id,
                causation_id=event.event_id,
                order_id=event.order_id,
                customer_id=state.customer_id,
            )
            return OrderStageDecision((event,), (capture,))
        case OrderReturned():
            if not state.shipped:
                return OrderStageDecision()  # nothing was captured through this stage: nothing to refund
            refund = RefundPayment(
                command_id=_command_id(event, RefundPayment),
                issued_at=now,
                correlation_id=event.correlation_id,
                causation_id=event.event_id,
                order_id=event.order_id,
                customer_id=state.customer_id,
                amount_minor=event.refund_minor,
                reason=f"order returned: {event.reason}" if event.reason else "order returned",
            )
            return OrderStageDecision((event,), (refund,))
        case _:  # OrderRejected | OrderCancelled
            if not state.placed or state.ended or state.shipped:
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
        case OrderShipped():
            return replace(state, shipped=True)
        case OrderReturned():
            return state
    raise EvolveError(f"order {state.order_id}: the payment order stage does not mirror {event.type_name}")


def _command_id(event: Event, command_type: type) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{event.event_id}/{command_type.__name__}"))


# --- the customer stage (key: customer id) ------------------------------------------------------------------------


class LedgerStatus(enum.Enum):
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    CAPTURED = "CAPTURED"
    REFUNDED = "REFUNDED"  # released as a refund before capture existed, or some of the capture given back


_LEDGER_EVENTS = (PaymentAuthorized, PaymentDeclined, PaymentVoided, PaymentCaptured, PaymentRefunded)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One order's payment as the customer's ledger has it: the amount authorized (or declined), what of it was
    captured, and what of the capture was refunded."""

    amount_minor: int
    currency: str
    status: LedgerStatus
    captured_minor: int = 0
    refunded_minor: int = 0

    @property
    def refundable_minor(self) -> int:
        return self.captured_minor - self.refunded_minor


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
    command: PaymentRequest, ledger: CustomerLedger, limits: PaymentLimits, context: Context
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
            return ()  # nothing authorized to release (declined, captured, released already, or never asked for)
        # never captured, so nothing was taken: a void whatever the order's status (refund only what was captured)
        return (
            PaymentVoided(**fields, amount_minor=entry.amount_minor, currency=entry.currency, reason=command.reason),
        )
    if isinstance(command, CapturePayment):
        if entry is None or entry.status is not LedgerStatus.AUTHORIZED:
            return ()  # nothing authorized to capture (declined, released, captured already, or never asked for)
        return (PaymentCaptured(**fields, amount_minor=entry.amount_minor, currency=entry.currency),)
    if isinstance(command, RefundPayment):
        amount = min(command.amount_minor, entry.refundable_minor) if entry is not None else 0
        if amount <= 0:
            return ()  # nothing captured is left to give back
        return (PaymentRefunded(**fields, amount_minor=amount, currency=entry.currency, reason=command.reason),)
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
    if not isinstance(event, _LEDGER_EVENTS):
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
    entries[event.order_id] = _entry_after(before, event)
    if isinstance(event, PaymentAuthorized):
        outstanding[event.currency] = outstanding.get(event.currency, 0) + event.amount_minor
    return CustomerLedger(ledger.customer_id, event.version, entries, {c: a for c, a in outstanding.items() if a})


def _entry_after(before: LedgerEntry | None, event: Event) -> LedgerEntry:
    """An order's ledger entry after one of its payment events."""
    amount, currency = event.amount_minor, event.currency  # type: ignore[attr-defined]
    match event:
        case PaymentAuthorized():
            return LedgerEntry(amount, currency, LedgerStatus.AUTHORIZED)
        case PaymentDeclined():
            return LedgerEntry(amount, currency, LedgerStatus.DECLINED)
        case PaymentVoided():
            return LedgerEntry(amount, currency, LedgerStatus.VOIDED)
        case PaymentCaptured():
            if before is None or before.status is not LedgerStatus.AUTHORIZED:
                raise EvolveError(f"order {event.order_id}: a capture of a payment that is not authorized")
            return replace(before, status=LedgerStatus.CAPTURED, captured_minor=amount)
        case PaymentRefunded():
            if before is None or before.captured_minor == 0:  # a release written before capture existed
                return LedgerEntry(amount, currency, LedgerStatus.REFUNDED)
            if amount > before.refundable_minor:
                raise EvolveError(f"order {event.order_id}: a refund of {amount} of {before.refundable_minor} left")
            return replace(before, status=LedgerStatus.REFUNDED, refunded_minor=before.refunded_minor + amount)
    raise EvolveError(f"{event.type_name} is not a payment event")


def _money(amount_minor: int, currency: str) -> str:
    try:
        return format_minor(amount_minor, currency)
    except ValidationError:
        return f"{amount_minor} {currency} minor units"
