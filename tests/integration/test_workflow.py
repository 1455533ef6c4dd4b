"""The whole workflow: `orderstream run all` (order, payment, shipping, inventory, projections, one process each) plus
a second inventory instance, driven and checked only through the CLI.

One pipeline for the module (starting seven processes costs more than every scenario together); each scenario uses
its own customers and SKUs. The credit limit is lowered to 1000.00 EUR (ORDERSTREAM_PAYMENT_CREDIT_LIMIT_MINOR) so
one scenario can go over it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.config import Settings, load_settings
from orderstream.domain.commands import PlaceOrder
from orderstream.domain.events import (
    OrderConfirmed,
    OrderLine,
    OrderRejected,
    ShipmentCancelled,
    ShipmentCreated,
    StockReserved,
)
from orderstream.producers.commands import CommandSender
from orderstream.topology import INVENTORY_EVENTS, ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES, SHIPPING_EVENTS
from tests.support.orders import read_topic

CREDIT_LIMIT_MINOR = 100_000
runner = CliRunner()


@dataclass
class Pipeline:
    settings: Settings
    processes: list[subprocess.Popen]
    logs: list[Path]

    @property
    def root_args(self) -> list[str]:
        s = self.settings
        return ["-b", s.effective_bootstrap, "--topic-prefix", s.topic_prefix, "--data-dir", str(s.data_dir)]

    def check_running(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                pytest.fail(f"{process.args[-2:]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")

    def cli(self, *args: str, expect: int | None = 0):
        """Run one CLI command in this process (no interpreter start-up per call)."""
        result = runner.invoke(app, [*self.root_args, *args])
        if expect is not None:
            assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str):
        return json.loads(self.cli(*args, "--json").stdout)

    def eventually(self, query, predicate, timeout_s: float = 60.0, what: str = ""):
        """Ask `query()` until `predicate(answer)` holds; the views and the services' reactions are asynchronous."""
        deadline = time.monotonic() + timeout_s
        answer = None
        while time.monotonic() < deadline:
            answer = query()
            if answer is not None and predicate(answer):
                return answer
            self.check_running()
            time.sleep(0.3)
        raise AssertionError(f"{what or 'condition'} never held; last answer: {answer}")

    def order(self, order_id: str) -> dict | None:
        result = self.cli("query", "order", order_id, "--json", expect=None)
        return json.loads(result.stdout) if result.exit_code == 0 else None

    def order_reaches(self, order_id: str, status: str, **fields) -> dict:
        return self.eventually(
            lambda: self.order(order_id),
            lambda d: d["status"] == status and all(d[k] == v for k, v in fields.items()),
            what=f"order {order_id} {status} {fields}",
        )

    def shipment_created(self, order_id: str) -> None:
        """Until the shipping service has opened the order's shipment: only then can it be shipped. The order view
        showing CONFIRMED says nothing about it - the view and the shipping service read orders.events apart."""
        read_topic(
            self.settings,
            SHIPPING_EVENTS,
            timeout_s=60,
            until=lambda events: any(isinstance(e, ShipmentCreated) and e.order_id == order_id for e in events),
        )

    def stock(self, sku: str) -> dict | None:
        result = self.cli("query", "stock", sku, "--json", expect=None)
        return json.loads(result.stdout)[0] if result.exit_code == 0 else None

    def stock_reaches(self, sku: str, **levels) -> dict:
        return self.eventually(
            lambda: self.stock(sku),
            lambda row: all(row[k] == v for k, v in levels.items()),
            what=f"stock {sku} {levels}",
        )

    def restock(self, sku: str, quantity: int) -> None:
        assert self.json("stock", "add", sku, str(quantity), "--wait")["accepted"] is True

    def place(self, customer: str, *items: str) -> str:
        args = ["place", "--customer", customer]
        for item in items:
            args += ["--item", item]
        body = self.json(*args, "--wait")
        assert body["accepted"] is True, body
        return body["order_id"]


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from orderstream.kafka.topics import ensure_topics

    base = tmp_path_factory.mktemp("workflow")
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"wf{uuid.uuid4().hex[:8]}.",
        data_dir=base / "data",
        partitions=3,
    )
    ensure_topics(settings)
    env = os.environ | {"ORDERSTREAM_PAYMENT_CREDIT_LIMIT_MINOR": str(CREDIT_LIMIT_MINOR), "PYTHONUNBUFFERED": "1"}
    root = ["-b", kafka_bootstrap, "--topic-prefix", settings.topic_prefix, "--data-dir", str(settings.data_dir)]
    processes, logs = [], []
    for name, args in [("all", ["run", "all"]), ("inventory-2", ["run", "inventory"])]:
        log = base / f"{name}.log"
        handle = log.open("w")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "orderstream.cli.main", *root, *args],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        )
        logs.append(log)
    running = Pipeline(settings, processes, logs)
    try:
        yield running
        running.check_running()
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process in processes]
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]


def test_happy_path_from_restock_to_delivery_and_every_view_agrees(pipeline: Pipeline):
    pipeline.restock("WF-H1", 10)
    pipeline.restock("WF-H2", 5)

    order_id = pipeline.place("c-happy", "WF-H1:2:10.00", "WF-H2:1:5.00")
    confirmed = pipeline.order_reaches(order_id, "CONFIRMED", payment_status="AUTHORIZED")
    pipeline.shipment_created(order_id)
    shipped = pipeline.json("ship", order_id, "--carrier", "DHL", "--tracking", "T-HAPPY", "--wait")
    pipeline.order_reaches(order_id, "SHIPPED")
    delivered = pipeline.json("deliver", order_id, "--wait")
    final = pipeline.order_reaches(order_id, "DELIVERED")

    assert confirmed["total_minor"] == 2500 and confirmed["customer_id"] == "c-happy"
    assert shipped["accepted"] and delivered["accepted"] and delivered["version"] == shipped["version"] + 1
    assert [t["type"] for t in final["timeline"]][-3:] == ["OrderConfirmed", "OrderShipped", "OrderDelivered"]
    assert final["lines"] == [
        {"sku": "WF-H1", "quantity": 2, "unit_price_minor": 1000},
        {"sku": "WF-H2", "quantity": 1, "unit_price_minor": 500},
    ]
    pipeline.stock_reaches("WF-H1", on_hand=10, reserved=2, available=8)
    pipeline.stock_reaches("WF-H2", on_hand=5, reserved=1, available=4)
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
        "DispatchShipment",
        "ShipmentDispatched",
        "OrderShipped",
        "ConfirmDelivery",
        "ShipmentDelivered",
        "OrderDelivered",
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
        "shipping.commands",
        "shipping.events",
    } <= topics, topics
    ids = {r["headers"]["ce_id"] for r in records}
    assert all(r["headers"]["ce_correlationid"] == order_id for r in records)
    orphans = [(r["topic"], r["type"]) for r in records if r["headers"]["ce_causationid"] not in ids]
    assert orphans == [], "every record's cause is a record of the same workflow"


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


def test_over_the_credit_limit_the_order_is_rejected_and_its_stock_released(pipeline: Pipeline):
    pipeline.restock("WF-C1", 10)
    first = pipeline.place("c-credit", "WF-C1:1:800.00")
    pipeline.order_reaches(first, "CONFIRMED")

    second = pipeline.place("c-credit", "WF-C1:2:150.00")  # 800 + 300 > 1000.00 EUR

    pipeline.order_reaches(second, "REJECTED", payment_status="DECLINED")
    pipeline.stock_reaches("WF-C1", on_hand=10, reserved=1, available=9)
    events = [e for _, e in read_topic(pipeline.settings, ORDERS_EVENTS) if e.order_id == second]
    assert "credit limit of 1000.00 EUR" in next(e for e in events if isinstance(e, OrderRejected)).reason


def test_cancel_after_confirmation_compensates_and_cancel_after_shipping_is_refused(pipeline: Pipeline):
    pipeline.restock("WF-X1", 10)
    cancelled = pipeline.place("c-cancel", "WF-X1:3:2.00")
    pipeline.order_reaches(cancelled, "CONFIRMED")
    pipeline.stock_reaches("WF-X1", reserved=3)

    assert pipeline.json("cancel", cancelled, "--reason", "changed my mind", "--wait")["accepted"] is True
    pipeline.order_reaches(cancelled, "CANCELLED", payment_status="REFUNDED")
    pipeline.stock_reaches("WF-X1", on_hand=10, reserved=0, available=10)
    shipment = [e for _, e in read_topic(pipeline.settings, SHIPPING_EVENTS) if e.order_id == cancelled]
    assert isinstance(shipment[-1], ShipmentCancelled) and "changed my mind" in shipment[-1].reason
    refused_ship = pipeline.cli("ship", cancelled, "--wait", expect=1)
    assert "was cancelled" in refused_ship.stderr

    shipped = pipeline.place("c-cancel", "WF-X1:1:2.00")
    pipeline.order_reaches(shipped, "CONFIRMED")
    pipeline.shipment_created(shipped)
    pipeline.cli("ship", shipped, "--wait")
    pipeline.order_reaches(shipped, "SHIPPED")
    refused = pipeline.cli("cancel", shipped, "--wait", "--json", expect=1)
    assert json.loads(refused.stdout)["accepted"] is False
    assert refused.stderr.strip().count("\n") == 0 and "SHIPPED: it cannot be cancelled" in refused.stderr
    pipeline.stock_reaches("WF-X1", reserved=1)


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
    second_instance = pipeline.logs[1].read_text()
    assert "inventory-stock: assigned partitions [" in second_instance, "the second inventory instance took part"
