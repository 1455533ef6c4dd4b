"""The payment and shipping services against the real broker, each with only what it needs around it.

Payment: the order service and the payment service; orders authorized, declined over either limit (and so rejected),
voided when cancelled, and the released credit usable again. Shipping: order events written straight to orders.events
(the order decides dispatch and delivery), carried out by the shipping service; its old commands refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from orderstream.domain.commands import AuthorizePayment, ConfirmDelivery, DispatchShipment, PlaceOrder, ReleasePayment
from orderstream.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderLine,
    OrderPaymentUpdated,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentStatus,
    PaymentVoided,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentPending,
)
from orderstream.producers.commands import CommandSender
from orderstream.services.order_service import OrderService
from orderstream.services.payment_service import PaymentService
from orderstream.services.shipping_service import ShippingService
from orderstream.topology import (
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_REPLIES,
    PAYMENTS_EVENTS,
    PAYMENTS_LEDGER,
    PAYMENTS_REQUESTS,
    SHIPPING_COMMANDS,
    SHIPPING_EVENTS,
    SHIPPING_REPLIES,
)
from tests.support.orders import CODEC, RunningService, cancel_order, events_by_order, read_topic

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _place(order_id: str, customer: str, total: int) -> PlaceOrder:
    return PlaceOrder(
        command_id=f"cmd-{order_id}",
        issued_at=datetime.now(UTC),
        correlation_id=order_id,
        order_id=order_id,
        customer_id=customer,
        currency="EUR",
        lines=(OrderLine(sku="SKU-1", quantity=1, unit_price_minor=total),),
        channel="test",
    )


def _order_events_until(settings, order_id: str, predicate) -> list:
    def done(events):
        return predicate([e for e in events if e.order_id == order_id])

    return [e for _, e in read_topic(settings, ORDERS_EVENTS, until=done, timeout_s=30) if e.order_id == order_id]


def test_payments_are_authorized_within_the_limits_declined_over_them_and_voided_on_cancel(topics):
    settings = topics.model_copy(update={"payment_order_limit_minor": 1000, "payment_credit_limit_minor": 2500})
    order = RunningService(OrderService(settings)).start()
    pay = RunningService(PaymentService(settings)).start()

    def payment_of(order_id):
        events = _order_events_until(settings, order_id, lambda es: any(isinstance(e, OrderPaymentUpdated) for e in es))
        return next(e for e in events if isinstance(e, OrderPaymentUpdated))

    try:
        with CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send:
            for order_id, total in [("o-a", 800), ("o-b", 1200), ("o-c", 900), ("o-d", 900)]:
                assert send.send_and_wait(_place(order_id, "cust-1", total)).reply.accepted
                payment_of(order_id)  # decided before the next one is placed
            assert send.send_and_wait(cancel_order("o-a")).reply.accepted
            _order_events_until(
                settings, "o-a", lambda es: len([e for e in es if isinstance(e, OrderPaymentUpdated)]) == 2
            )
            assert send.send_and_wait(_place("o-e", "cust-1", 900)).reply.accepted
            assert payment_of("o-e").payment_status is PaymentStatus.AUTHORIZED, "the voided 800 is credit again"
    finally:
        pay.stop()
        order.stop()

    streams = events_by_order([e for _, e in read_topic(settings, ORDERS_EVENTS)])
    statuses = {
        oid: [(type(e).__name__, getattr(e, "payment_status", None)) for e in es] for oid, es in streams.items()
    }
    assert statuses["o-a"][-2:] == [("OrderCancelled", None), ("OrderPaymentUpdated", PaymentStatus.VOIDED)]
    assert isinstance(streams["o-b"][-1], OrderRejected) and "per-order limit of 10.00 EUR" in streams["o-b"][-1].reason
    assert isinstance(streams["o-d"][-1], OrderRejected) and "credit limit of 25.00 EUR" in streams["o-d"][-1].reason
    assert [type(e) for e in streams["o-c"]] == [OrderPlaced, OrderPaymentUpdated], "authorized, waiting for stock"

    # the customer's ledger: one stream, versions 1..n, keyed by customer; the same events by order id
    ledger = read_topic(settings, PAYMENTS_LEDGER)
    assert {rec.key() for rec, _ in ledger} == {b"cust-1"}
    assert [e.version for _, e in ledger] == list(range(1, len(ledger) + 1))
    kinds = [(type(e), e.order_id) for _, e in ledger]
    assert kinds == [
        (PaymentAuthorized, "o-a"),
        (PaymentDeclined, "o-b"),
        (PaymentAuthorized, "o-c"),
        (PaymentDeclined, "o-d"),
        (PaymentVoided, "o-a"),
        (PaymentAuthorized, "o-e"),
    ]
    published = read_topic(settings, PAYMENTS_EVENTS)
    assert sorted(e.event_id for _, e in published) == sorted(e.event_id for _, e in ledger)
    assert all(rec.key().decode() == e.order_id for rec, e in published)

    # causation: OrderPlaced -> AuthorizePayment -> PaymentAuthorized; OrderCancelled -> ReleasePayment -> PaymentVoided
    requests = {r.order_id + type(r).__name__: r for _, r in read_topic(settings, PAYMENTS_REQUESTS)}
    assert all(isinstance(r, AuthorizePayment | ReleasePayment) for r in requests.values())
    release = requests["o-aReleasePayment"]
    assert release.refund is False and release.causation_id == streams["o-a"][-2].event_id
    voided = next(e for _, e in ledger if isinstance(e, PaymentVoided))
    assert voided.causation_id == release.command_id and voided.correlation_id == "o-a"
    assert requests["o-aAuthorizePayment"].causation_id == streams["o-a"][0].event_id
    assert "o-bReleasePayment" in requests and "o-dReleasePayment" in requests, "asked; nothing to release"


def _write_order_events(settings, events) -> None:
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config

    producer = Producer(producer_config(settings))
    for event in events:
        producer.produce(
            settings.topic(ORDERS_EVENTS),
            key=event.order_id.encode(),
            value=CODEC.encode(event),
            headers=CODEC.headers(event, "orderstream/test"),
        )
    assert producer.flush(10) == 0


def _order_events(order_id: str, *kinds) -> list:
    meta = dict(occurred_at=T0, correlation_id=order_id, causation_id="test")
    events = [
        OrderPlaced(
            event_id=f"{order_id}-1",
            version=1,
            order_id=order_id,
            customer_id="cust-9",
            currency="EUR",
            lines=(OrderLine(sku="A", quantity=1, unit_price_minor=100),),
            total_minor=100,
            **meta,
        )
    ]
    for version, kind in enumerate(kinds, start=2):
        extra = {"reason": "test"} if kind is OrderCancelled else {}
        if kind is OrderShipped:
            extra = {"carrier": "DHL", "tracking_number": "T-9"}
        events.append(kind(event_id=f"{order_id}-{version}", version=version, order_id=order_id, **extra, **meta))
    return events


def test_shipments_carry_out_what_the_order_decided_and_the_old_commands_are_refused(topics):
    _write_order_events(
        topics,
        _order_events("o-placed")
        + _order_events("o-ship", OrderConfirmed, OrderShipped, OrderDelivered)
        + _order_events("o-cancel", OrderConfirmed, OrderCancelled),
    )
    ship = RunningService(ShippingService(topics)).start()
    try:
        read_topic(topics, SHIPPING_EVENTS, until=lambda es: len(es) >= 8, timeout_s=30)
        with CommandSender(topics, SHIPPING_COMMANDS, SHIPPING_REPLIES, source="orderstream/test") as send:
            dispatch = DispatchShipment(
                command_id="s-1",
                issued_at=datetime.now(UTC),
                correlation_id="o-cancel",
                order_id="o-cancel",
                carrier="DHL",
                tracking_number="T-1",
            )
            refused = send.send_and_wait(dispatch).reply
            repeat = send.send_and_wait(dispatch).reply
            deliver = ConfirmDelivery(
                command_id="d-1", issued_at=datetime.now(UTC), correlation_id="o-ship", order_id="o-ship"
            )
            refused_delivery = send.send_and_wait(deliver).reply
    finally:
        ship.stop()

    # a shipment is dispatched only because its order accepted the dispatch: never on a command of its own
    assert (
        not refused.accepted
        and "decided by the order service" in refused.reason
        and "orderstream ship" in refused.reason
    )
    assert (repeat.accepted, repeat.reason) == (refused.accepted, refused.reason), "refused again, changing nothing"
    assert not refused_delivery.accepted and "orderstream deliver" in refused_delivery.reason

    streams = events_by_order([e for _, e in read_topic(topics, SHIPPING_EVENTS)])
    assert [type(e) for e in streams["o-placed"]] == [ShipmentPending]
    assert [type(e) for e in streams["o-ship"]] == [
        ShipmentPending,
        ShipmentCreated,
        ShipmentDispatched,
        ShipmentDelivered,
    ]
    assert [type(e) for e in streams["o-cancel"]] == [ShipmentPending, ShipmentCreated, ShipmentCancelled]
    assert streams["o-ship"][1].customer_id == "cust-9"
    dispatched = streams["o-ship"][2]
    assert (dispatched.carrier, dispatched.tracking_number, dispatched.causation_id) == ("DHL", "T-9", "o-ship-3")
    records = read_topic(topics, SHIPPING_REPLIES)
    assert all(rec.key().decode() == reply.aggregate_id for rec, reply in records)
