"""The whole workflow: `orderstream run all` (order, payment, shipping, inventory, projections, one process each) plus
a second instance of every service, driven and checked only through the CLI, with the views on SQLite and on
PostgreSQL.

One pipeline per database for the module (starting the processes costs more than every scenario together); each
scenario uses its own customers and SKUs, and ends by checking the books (tests/support/workflow.py: stock, money and
outcomes add up). The credit limit is lowered to 1000.00 EUR (ORDERSTREAM_PAYMENT_CREDIT_LIMIT_MINOR) so one scenario
can go over it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from orderstream.domain.commands import PlaceOrder
from orderstream.domain.events import (
    OrderConfirmed,
    OrderLine,
    OrderRejected,
    ShipmentCancelled,
    StockReserved,
)
from orderstream.producers.commands import CommandSender
from orderstream.topology import INVENTORY_EVENTS, ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES, SHIPPING_EVENTS
from tests.support.databases import another_database
from tests.support.orders import read_topic
from tests.support.workflow import SECOND_INSTANCES, Pipeline, check_books, start_pipeline, stop_pipeline

CREDIT_LIMIT_MINOR = 100_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pipeline(request, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    base = tmp_path_factory.mktemp(f"workflow-{request.param}")
    database_url = None
    if request.param == "postgresql":  # a fresh database of the session's cluster (fails, not skips, when required)
        database_url = another_database(request.getfixturevalue("postgres_url"), base)
    running = start_pipeline(
        kafka_bootstrap,
        base,
        database_url,
        {"ORDERSTREAM_PAYMENT_CREDIT_LIMIT_MINOR": str(CREDIT_LIMIT_MINOR)},
    )
    try:
        yield running
        running.check_running()
    finally:
        stop_pipeline(running)


def test_happy_path_from_restock_to_delivery_and_every_view_agrees(pipeline: Pipeline):
    pipeline.restock("WF-H1", 10)
    pipeline.restock("WF-H2", 5)

    order_id = pipeline.place("c-happy", "WF-H1:2:10.00", "WF-H2:1:5.00")
    confirmed = pipeline.order_reaches(order_id, "CONFIRMED", payment_status="AUTHORIZED")
    shipped = pipeline.json("ship", order_id, "--carrier", "DHL", "--tracking", "T-HAPPY", "--wait")
    assert pipeline.order(order_id, "--after", shipped["token"])["status"] == "SHIPPED", "the token is in orders.events"
    delivered = pipeline.json("deliver", order_id, "--wait")
    final = pipeline.order(order_id, "--after", delivered["token"])
    assert final["status"] == "DELIVERED"

    assert confirmed["total_minor"] == 2500 and confirmed["customer_id"] == "c-happy"
    assert shipped["accepted"] and delivered["accepted"] and delivered["version"] == shipped["version"] + 1
    assert [t["type"] for t in final["timeline"]][-3:] == ["OrderConfirmed", "OrderShipped", "OrderDelivered"]
    assert final["lines"] == [
        {"sku": "WF-H1", "quantity": 2, "unit_price_minor": 1000, "returned_quantity": 0},
        {"sku": "WF-H2", "quantity": 1, "unit_price_minor": 500, "returned_quantity": 0},
    ]
    pipeline.stock_reaches("WF-H1", on_hand=8, reserved=0, available=8)  # the units left with the parcel
    pipeline.stock_reaches("WF-H2", on_hand=4, reserved=0, available=4)
    sales = pipeline.eventually(
        lambda: pipeline.json("query", "sales", "--by", "sku"),
        lambda s: any(r["sku"] == "WF-H1" for r in s["rows"]),
        what="sales of WF-H1",
    )
    by_sku = {r["sku"]: r for r in sales["rows"]}
    assert (by_sku["WF-H1"]["units"], by_sku["WF-H1"]["revenue_minor"]) == (2, 2000)
    assert (by_sku["WF-H2"]["units"], by_sku["WF-H2"]["revenue_minor"]) == (1, 500)
    (customer,) = pipeline.eventually(lambda: pipeline.json("query", "customer", "c-happy"), lambda rows: bool(rows))
    assert (customer["orders_count"], customer["lifetime_value_minor"], customer["currency"]) == (1, 2500, "EUR")

    # one correlation id follows the order across every topic, and every cause is in the same story
    tailed = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            *pipeline.root_args,
            "tail",
            "all",
            "--from-beginning",
            "--no-follow",
            "--correlation",
            order_id,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in tailed.stdout.splitlines()]
    types = {r["type"] for r in records}
    assert {
        "PlaceOrder",
        "OrderPlaced",
        "AuthorizePayment",
        "PaymentAuthorized",
        "ReserveStock",
        "StockReserved",
        "OrderConfirmed",
        "ShipmentPending",
        "ShipmentCreated",
        "ShipOrder",
        "OrderShipped",
        "ShipmentDispatched",
        "CapturePayment",
        "PaymentCaptured",
        "ShipStock",
        "StockShipped",
        "DeliverOrder",
        "OrderDelivered",
        "ShipmentDelivered",
    } <= types, types
    topics = {r["topic"].removeprefix(pipeline.settings.topic_prefix) for r in records}
    assert {
        "orders.commands",
        "orders.events",
        "payments.requests",
        "payments.ledger",
        "payments.events",
        "inventory.reservations",
        "inventory.events",
        "inventory.results",
        "shipping.events",
    } <= topics, topics
    ids = {r["headers"]["ce_id"] for r in records}
    assert all(r["headers"]["ce_correlationid"] == order_id for r in records)
    orphans = [(r["topic"], r["type"]) for r in records if r["headers"]["ce_causationid"] not in ids]
    assert orphans == [], "every record's cause is a record of the same workflow"
    check_books(pipeline, ["WF-H1", "WF-H2"], [order_id])


def test_a_line_out_of_stock_rejects_the_order_releases_the_other_lines_and_voids_the_payment(pipeline: Pipeline):
    pipeline.restock("WF-O1", 5)
    pipeline.restock("WF-O2", 1)

    order_id = pipeline.place("c-oos", "WF-O1:2:1.00", "WF-O2:3:1.00")

    rejected = pipeline.order_reaches(order_id, "REJECTED", payment_status="VOIDED")
    pipeline.stock_reaches("WF-O1", on_hand=5, reserved=0, available=5)
    pipeline.stock_reaches("WF-O2", on_hand=1, reserved=0, available=1)
    assert "OrderRejected" in [t["type"] for t in rejected["timeline"]]
    events = [e for _, e in read_topic(pipeline.settings, ORDERS_EVENTS) if e.order_id == order_id]
    assert "WF-O2" in next(e for e in events if isinstance(e, OrderRejected)).reason
    check_books(pipeline, ["WF-O1", "WF-O2"], [order_id])


def test_place_can_wait_for_the_orders_outcome_not_only_the_reply(pipeline: Pipeline):
    pipeline.restock("WF-W1", 1)
    confirmed = pipeline.json("place", "--customer", "c-wait", "--item", "WF-W1:1:4.00", "--wait-for", "outcome")
    assert (confirmed["accepted"], confirmed["outcome"], confirmed["reason"]) == (True, "CONFIRMED", None)
    # its token is the outcome's: a read after it sees the order confirmed, at once
    after = pipeline.json("query", "order", confirmed["order_id"], "--after", confirmed["token"])
    assert (after["status"], after["version"]) == ("CONFIRMED", confirmed["version"])

    text = pipeline.cli("place", "--customer", "c-wait", "--item", "WF-W1:1:4.00", "--wait-for", "outcome", expect=1)
    (line,) = text.stderr.strip().splitlines()  # the only unit is taken: the order is accepted, then rejected
    assert line.startswith("error: o-") and " REJECTED: " in line and text.stdout == "", text.stderr
    rejected = pipeline.cli(
        "place", "--customer", "c-wait", "--item", "WF-W1:1:4.00", "--wait-for", "outcome", "--json", expect=1
    )
    body = json.loads(rejected.stdout)
    assert (body["accepted"], body["outcome"]) == (True, "REJECTED") and body["reason"], body
    timeline = pipeline.order_reaches(body["order_id"], "REJECTED")["timeline"]
    assert {"type": "OrderRejected", "version": body["version"]}.items() <= next(
        t for t in timeline if t["type"] == "OrderRejected"
    ).items()


def test_over_the_credit_limit_the_order_is_rejected_and_its_stock_released(pipeline: Pipeline):
    pipeline.restock("WF-C1", 10)
    first = pipeline.place("c-credit", "WF-C1:1:800.00")
    pipeline.order_reaches(first, "CONFIRMED")

    second = pipeline.place("c-credit", "WF-C1:2:150.00")  # 800 + 300 > 1000.00 EUR

    pipeline.order_reaches(second, "REJECTED", payment_status="DECLINED")
    pipeline.stock_reaches("WF-C1", on_hand=10, reserved=1, available=9)
    events = [e for _, e in read_topic(pipeline.settings, ORDERS_EVENTS) if e.order_id == second]
    assert "credit limit of 1000.00 EUR" in next(e for e in events if isinstance(e, OrderRejected)).reason
    check_books(pipeline, ["WF-C1"], [first, second])


def test_cancel_after_confirmation_compensates_and_cancel_after_shipping_is_refused(pipeline: Pipeline):
    pipeline.restock("WF-X1", 10)
    cancelled = pipeline.place("c-cancel", "WF-X1:3:2.00")
    pipeline.order_reaches(cancelled, "CONFIRMED")
    pipeline.stock_reaches("WF-X1", reserved=3)

    assert pipeline.json("cancel", cancelled, "--reason", "changed my mind", "--wait")["accepted"] is True
    pipeline.order_reaches(cancelled, "CANCELLED", payment_status="VOIDED")  # nothing was captured: nothing refunded
    pipeline.stock_reaches("WF-X1", on_hand=10, reserved=0, available=10)
    shipment = [e for _, e in read_topic(pipeline.settings, SHIPPING_EVENTS) if e.order_id == cancelled]
    assert isinstance(shipment[-1], ShipmentCancelled) and "changed my mind" in shipment[-1].reason
    refused_ship = pipeline.cli("ship", cancelled, "--wait", expect=1)
    assert "was cancelled" in refused_ship.stderr

    shipped = pipeline.place("c-cancel", "WF-X1:1:2.00")
    pipeline.order_reaches(shipped, "CONFIRMED")
    pipeline.cli("ship", shipped, "--wait")
    refused = pipeline.cli("cancel", shipped, "--wait", "--json", expect=1)
    assert json.loads(refused.stdout)["accepted"] is False
    assert refused.stderr.strip().count("\n") == 0 and "SHIPPED: it cannot be cancelled" in refused.stderr
    assert "dispatch was accepted" in refused.stderr and "return" in refused.stderr
    pipeline.stock_reaches("WF-X1", on_hand=9, reserved=0, available=9)
    check_books(pipeline, ["WF-X1"], [cancelled, shipped])


def test_two_hundred_orders_race_for_fifty_units_with_two_inventory_instances(pipeline: Pipeline):
    pipeline.restock("WF-RACE", 50)
    orders = [f"o-race-{i:03d}" for i in range(200)]
    with CommandSender(pipeline.settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send:
        for i, order_id in enumerate(orders):
            send.send(
                PlaceOrder(
                    command_id=str(uuid.uuid4()),
                    issued_at=datetime.now(UTC),
                    correlation_id=order_id,
                    order_id=order_id,
                    customer_id=f"c-race-{i}",
                    currency="EUR",
                    lines=(OrderLine(sku="WF-RACE", quantity=1, unit_price_minor=100),),
                    channel="test",
                )
            )
    race = set(orders)

    def outcomes(events) -> dict[str, type]:
        return {
            e.order_id: type(e) for e in events if isinstance(e, OrderConfirmed | OrderRejected) and e.order_id in race
        }

    deadline = time.monotonic() + 120
    while True:
        ended = outcomes(e for _, e in read_topic(pipeline.settings, ORDERS_EVENTS))
        if len(ended) == len(orders) or time.monotonic() > deadline:
            break
        pipeline.check_running()
        time.sleep(1)

    assert len(ended) == 200, f"{200 - len(ended)} orders never ended"
    assert sum(kind is OrderConfirmed for kind in ended.values()) == 50
    stock = [e for _, e in read_topic(pipeline.settings, INVENTORY_EVENTS) if e.sku == "WF-RACE"]
    reserved = [e for e in stock if isinstance(e, StockReserved)]
    assert len(reserved) == 50 and all(e.reserved <= e.on_hand == 50 for e in reserved)
    assert {e.order_id for e in reserved} == {o for o, kind in ended.items() if kind is OrderConfirmed}
    pipeline.stock_reaches("WF-RACE", on_hand=50, reserved=50, available=0)
    second_instance = pipeline.logs[1 + SECOND_INSTANCES.index("inventory")].read_text()
    assert "inventory-stock: assigned partitions [" in second_instance, "the second inventory instance took part"
    check_books(pipeline, ["WF-RACE"], orders)


def test_returns_whole_partial_over_and_undelivered_and_a_repeated_command_changes_nothing(pipeline: Pipeline):
    pipeline.restock("WF-R1", 10)
    pipeline.restock("WF-R2", 10)
    whole = pipeline.deliver_order("c-return", "WF-R1:2:3.00", "WF-R2:1:4.00")
    partial = pipeline.deliver_order("c-return", "WF-R1:3:3.00", "WF-R2:2:4.00")
    undelivered = pipeline.place("c-return", "WF-R1:1:3.00")
    pipeline.order_reaches(undelivered, "CONFIRMED")

    returned = pipeline.json("return", whole, "--reason", "too big", "--wait")
    assert returned["accepted"] is True and returned["restock"] is True
    view = pipeline.order(whole, "--after", returned["token"])
    assert view["status"] == "RETURNED" and "OrderReturned" in [t["type"] for t in view["timeline"]]
    assert [line["returned_quantity"] for line in view["lines"]] == [2, 1]

    first = pipeline.json("return", partial, "--item", "WF-R1:1", "--wait")
    view = pipeline.order(partial, "--after", first["token"])
    assert view["status"] == "PARTIALLY_RETURNED" and [line["returned_quantity"] for line in view["lines"]] == [1, 0]
    over = pipeline.cli("return", partial, "--item", "WF-R1:3", "--wait", expect=1)
    assert (
        over.stderr.strip().count("\n") == 0 and "cannot return 3 of WF-R1: 2 delivered and not returned" in over.stderr
    )
    damaged = pipeline.json("return", partial, "--item", "WF-R2:2", "--no-restock", "--wait")
    assert damaged["accepted"] is True and damaged["restock"] is False
    again = pipeline.cli("return", whole, "--wait", expect=1)
    assert "returned whole: nothing is left" in again.stderr
    not_yet = pipeline.cli("return", undelivered, "--wait", expect=1)
    assert "CONFIRMED: it cannot be returned (only a delivered order can)" in not_yet.stderr

    # the same command id twice: the first answer again, and nothing new in the order's stream
    from orderstream.domain.commands import ReturnItem, ReturnOrder

    command = ReturnOrder(
        command_id=str(uuid.uuid4()),
        issued_at=datetime.now(UTC),
        correlation_id=partial,
        order_id=partial,
        items=(ReturnItem(sku="WF-R1", quantity=1),),
        reason="repeat me",
    )
    with CommandSender(pipeline.settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send:
        once = send.send_and_wait(command).reply
        twice = send.send_and_wait(command).reply
    assert once.accepted and (twice.accepted, twice.version, twice.events_offset) == (
        True,
        once.version,
        once.events_offset,
    )
    view = pipeline.order_reaches(partial, "PARTIALLY_RETURNED", version=once.version)
    assert [line["returned_quantity"] for line in view["lines"]] == [2, 2]

    # on hand = restocked - shipped + restocked returns: 2+1 back from the whole return, 2 of WF-R1 back, WF-R2 damaged
    pipeline.stock_reaches("WF-R1", on_hand=10 - 5 + 2 + 2, reserved=1)
    pipeline.stock_reaches("WF-R2", on_hand=10 - 3 + 1, reserved=0)
    check_books(pipeline, ["WF-R1", "WF-R2"], [whole, partial, undelivered])


def test_a_customer_with_many_delivered_orders_is_not_declined_for_credit(pipeline: Pipeline):
    pipeline.restock("WF-L1", 10)
    orders = [pipeline.deliver_order("c-loyal", "WF-L1:1:450.00") for _ in range(3)]  # 1350.00 > the 1000.00 limit
    check_books(pipeline, ["WF-L1"], orders)


def test_ship_and_cancel_race_at_hundreds_of_confirmed_orders_and_exactly_one_wins_each(pipeline: Pipeline):
    import random
    import threading

    from orderstream.domain.commands import CancelOrder, ShipOrder

    count = 200
    pipeline.restock("WF-SC", 2 * count)
    orders = [f"o-sc-{uuid.uuid4().hex[:6]}-{i:03d}" for i in range(count)]
    with CommandSender(pipeline.settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send:
        for i, order_id in enumerate(orders):
            send.send(
                PlaceOrder(
                    command_id=str(uuid.uuid4()),
                    issued_at=datetime.now(UTC),
                    correlation_id=order_id,
                    order_id=order_id,
                    customer_id=f"c-sc-{i % 20}",
                    currency="EUR",
                    lines=(OrderLine(sku="WF-SC", quantity=1 + i % 2, unit_price_minor=100),),
                    channel="test",
                )
            )
    targets = set(orders)
    read_topic(
        pipeline.settings,
        ORDERS_EVENTS,
        timeout_s=180,
        until=lambda es: (
            len({e.order_id for e in es if isinstance(e, OrderConfirmed) and e.order_id in targets}) == count
        ),
    )

    now = datetime.now(UTC)
    ships = {
        o: ShipOrder(
            command_id=str(uuid.uuid4()),
            issued_at=now,
            correlation_id=o,
            order_id=o,
            carrier="DHL",
            tracking_number=f"T-{o}",
        )
        for o in orders
    }
    cancels = {
        o: CancelOrder(command_id=str(uuid.uuid4()), issued_at=now, correlation_id=o, order_id=o, reason="race")
        for o in orders
    }
    rng = random.Random(20)
    # three interleavings: ship just before cancel, cancel just before ship (one producer, in that order), and the
    # rest fired by two producers at once, each in its own random order (they race on the order's partition)
    ship_first, cancel_first, racing = orders[: count // 4], orders[count // 4 : count // 2], orders[count // 2 :]
    in_order = [c for o in ship_first for c in (ships[o], cancels[o])]
    in_order += [c for o in cancel_first for c in (cancels[o], ships[o])]

    def fire(commands: list, seed: int | None) -> None:
        if seed is not None:
            random.Random(seed).shuffle(commands)
        with CommandSender(pipeline.settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send:
            for command in commands:
                send.send(command)

    firing = [
        threading.Thread(target=fire, args=(in_order, None)),
        threading.Thread(target=fire, args=([ships[o] for o in racing], rng.random())),
        threading.Thread(target=fire, args=([cancels[o] for o in racing], rng.random())),
    ]
    for thread in firing:
        thread.start()
    for thread in firing:
        thread.join()

    replies: dict[str, bool] = {}

    def answered(values) -> bool:
        replies.update({r.command_id: r.accepted for r in values})
        return all(c.command_id in replies for c in (*ships.values(), *cancels.values()))

    read_topic(pipeline.settings, ORDERS_REPLIES, until=answered, timeout_s=180)
    for order_id in orders:
        won = (replies[ships[order_id].command_id], replies[cancels[order_id].command_id])
        assert won in ((True, False), (False, True)), (order_id, won)
    shipped = {o for o in orders if replies[ships[o].command_id]}
    assert set(ship_first) <= shipped and not set(cancel_first) & shipped, "the first of the two commands won"

    from orderstream.domain.events import OrderCancelled, OrderShipped, ShipmentDispatched

    streams: dict[str, set] = {}
    for _, e in read_topic(pipeline.settings, ORDERS_EVENTS):
        if e.order_id in targets:
            streams.setdefault(e.order_id, set()).add(type(e))
    for order_id, kinds in streams.items():
        assert (OrderShipped in kinds) != (OrderCancelled in kinds), (order_id, kinds)
        assert (OrderShipped in kinds) == (order_id in shipped)
    shipments = read_topic(
        pipeline.settings,
        SHIPPING_EVENTS,
        timeout_s=120,
        until=lambda es: {e.order_id for e in es if isinstance(e, ShipmentDispatched | ShipmentCancelled)} >= targets,
    )
    ends = {e.order_id: type(e) for _, e in shipments if isinstance(e, ShipmentDispatched | ShipmentCancelled)}
    assert {o for o in targets if ends[o] is ShipmentDispatched} == shipped, "no cancelled order has a parcel out"
    units = sum(1 + i % 2 for i, o in enumerate(orders) if o in shipped)
    pipeline.stock_reaches("WF-SC", on_hand=2 * count - units, reserved=0)
    check_books(pipeline, ["WF-SC"], orders)
