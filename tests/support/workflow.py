"""The whole pipeline as real processes, driven through the CLI, and the books it must keep (tests/integration).

`start_pipeline` runs `orderstream run all` plus a second instance of every service (order, payment, inventory,
shipping), so each service's partitions are shared by two processes. The projections write to SQLite files or to a
fresh PostgreSQL database. `check_books` is what every workflow test asserts at its end: stock, money and outcomes
add up, from the topics (the system of record) and from the views.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.config import Settings, load_settings
from orderstream.domain.events import (
    OrderCancelled,
    OrderDelivered,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
    StockAdded,
    StockReleased,
    StockReserved,
    StockReturned,
    StockShipped,
)
from orderstream.topology import INVENTORY_EVENTS, ORDERS_EVENTS, PAYMENTS_EVENTS
from tests.support.orders import read_topic

runner = CliRunner()
SECOND_INSTANCES = ("order", "payment", "inventory", "shipping")
ENDED = (OrderCancelled, OrderRejected, OrderDelivered, OrderReturned)


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
        env = {"ORDERSTREAM_DATABASE_URL": self.settings.database_url} if self.settings.database_url else {}
        result = runner.invoke(app, [*self.root_args, *args], env=env)
        if expect is not None:
            assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str):
        return json.loads(self.cli(*args, "--json").stdout)

    def eventually(self, query, predicate, timeout_s: float = 90.0, what: str = ""):
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

    def order(self, order_id: str, *after: str) -> dict | None:
        result = self.cli("query", "order", order_id, *after, "--json", expect=None)
        return json.loads(result.stdout) if result.exit_code == 0 else None

    def order_reaches(self, order_id: str, status: str, **fields) -> dict:
        return self.eventually(
            lambda: self.order(order_id),
            lambda d: d["status"] == status and all(d[k] == v for k, v in fields.items()),
            what=f"order {order_id} {status} {fields}",
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

    def deliver_order(self, customer: str, *items: str) -> str:
        """Place, ship and deliver one order; its id once the order view shows it DELIVERED."""
        order_id = self.place(customer, *items)
        self.order_reaches(order_id, "CONFIRMED")
        assert self.json("ship", order_id, "--wait")["accepted"] is True
        token = self.json("deliver", order_id, "--wait")["token"]
        delivered = self.order(order_id, "--after", token)
        assert delivered is not None and delivered["status"] == "DELIVERED", delivered
        return order_id


def start_pipeline(kafka_bootstrap: str, base: Path, database_url: str | None, env: dict[str, str]) -> Pipeline:
    from orderstream.kafka.topics import ensure_topics

    settings = load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"wf{uuid.uuid4().hex[:8]}.",
        data_dir=base / "data",
        partitions=3,
        database_url=database_url,
    )
    ensure_topics(settings)
    env = os.environ | env | {"PYTHONUNBUFFERED": "1"}
    if database_url:
        env["ORDERSTREAM_DATABASE_URL"] = database_url
    root = ["-b", kafka_bootstrap, "--topic-prefix", settings.topic_prefix, "--data-dir", str(settings.data_dir)]
    processes, logs = [], []
    for name, args in [("all", ["run", "all", "--no-api"]), *((f"{s}-2", ["run", s]) for s in SECOND_INSTANCES)]:
        log = base / f"{name}.log"
        with log.open("w") as handle:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "orderstream.cli.main", *root, *args],
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            )
        logs.append(log)
    return Pipeline(settings, processes, logs)


def stop_pipeline(pipeline: Pipeline) -> None:
    for process in pipeline.processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = [process.wait(90) for process in pipeline.processes]
    assert codes == [0] * len(codes), [log.read_text()[-3000:] for log in pipeline.logs]


# --- the books ------------------------------------------------------------------------------------------------------


def _quiet(pipeline: Pipeline, name: str) -> list:
    """Every event of a topic, once two reads a second apart agree (the services have caught up)."""
    previous = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        events = [e for _, e in read_topic(pipeline.settings, name, timeout_s=60)]
        if previous is not None and len(events) == len(previous):
            return events
        previous = events
        pipeline.check_running()
        time.sleep(1.0)
    raise AssertionError(f"{name} never stopped growing")


def check_books(pipeline: Pipeline, skus: Iterable[str], orders: Iterable[str]) -> None:
    """For every SKU: on hand = restocked - shipped + restocked returns, reserved = the open reservations, available
    >= 0 (in the log and in the stock view). For every order and customer: at most one of shipped / cancelled, no
    authorization outstanding once the order ended, and captured - refunded = the value shipped and kept."""
    skus, orders = set(skus), set(orders)
    order_events = [e for e in _quiet(pipeline, ORDERS_EVENTS) if e.order_id in orders]
    payments = [e for e in _quiet(pipeline, PAYMENTS_EVENTS) if e.order_id in orders]
    stock = [e for e in _quiet(pipeline, INVENTORY_EVENTS) if e.sku in skus]

    for sku in skus:
        events = [e for e in stock if e.sku == sku]
        added = sum(e.quantity for e in events if isinstance(e, StockAdded))
        shipped = sum(e.quantity for e in events if isinstance(e, StockShipped))
        returned = sum(e.quantity for e in events if isinstance(e, StockReturned))
        held: dict[str, int] = {}
        for e in events:
            if isinstance(e, StockReserved):
                held[e.order_id] = e.quantity
            elif isinstance(e, StockReleased | StockShipped):
                held.pop(e.order_id)
        on_hand = added - shipped + returned
        row = pipeline.stock_reaches(sku, on_hand=on_hand, reserved=sum(held.values()))
        assert row["available"] == on_hand - sum(held.values()) >= 0, row
        for order_id in held:  # an open reservation belongs to an order still waiting to ship
            kinds = {type(e) for e in order_events if e.order_id == order_id}
            assert not kinds & {OrderShipped, OrderCancelled, OrderRejected}, (sku, order_id, kinds)

    by_order: dict[str, list] = defaultdict(list)
    for e in order_events:
        by_order[e.order_id].append(e)
    money: dict[str, list] = defaultdict(list)
    for e in payments:
        money[e.order_id].append(e)
    kept_by_customer: dict[str, int] = defaultdict(int)
    net_by_customer: dict[str, int] = defaultdict(int)
    kept_by_order: dict[str, int] = {}
    for order_id, events in by_order.items():
        placed = next(e for e in events if isinstance(e, OrderPlaced))
        kinds = [type(e) for e in events]
        shipped = OrderShipped in kinds
        assert not (shipped and (OrderCancelled in kinds or OrderRejected in kinds)), (order_id, kinds)
        paid = money[order_id]
        authorized = sum(e.amount_minor for e in paid if isinstance(e, PaymentAuthorized))
        captured = sum(e.amount_minor for e in paid if isinstance(e, PaymentCaptured))
        voided = sum(e.amount_minor for e in paid if isinstance(e, PaymentVoided))
        refunded = sum(e.amount_minor for e in paid if isinstance(e, PaymentRefunded))
        returned = sum(e.refund_minor for e in events if isinstance(e, OrderReturned))
        kept = placed.total_minor - returned if shipped else 0
        assert captured - refunded == kept, (order_id, captured, refunded, kept)
        if any(isinstance(e, ENDED) for e in events) or shipped:
            assert authorized - captured - voided == 0, f"order {order_id}: an authorization is still outstanding"
        kept_by_customer[placed.customer_id] += kept
        net_by_customer[placed.customer_id] += captured - refunded
        kept_by_order[order_id] = kept
    assert net_by_customer == kept_by_customer

    # the payment view says the same, per order and per customer (each scenario has customers of its own)
    ended = {o for o, events in by_order.items() if any(isinstance(e, (*ENDED, OrderShipped)) for e in events)}
    for customer, kept in kept_by_customer.items():
        paid = {o for o, events in by_order.items() if events[0].customer_id == customer and money[o]}

        def agrees(body, paid=paid, kept=kept) -> bool:
            rows = {r["order_id"]: r for r in body["orders"] if r["order_id"] in paid}
            totals = [t for t in body["customers"] if t["currency"] == "EUR"]
            return (
                rows.keys() == paid
                and all(r["captured_minor"] - r["refunded_minor"] == kept_by_order[o] for o, r in rows.items())
                and all(rows[o]["outstanding_minor"] == 0 for o in paid & ended)
                and (not totals or totals[0]["captured_minor"] - totals[0]["refunded_minor"] == kept)
            )

        pipeline.eventually(
            lambda c=customer: pipeline.json("query", "payments", "--customer", c, "--limit", "100000"),
            agrees,
            what=f"the payment view of customer {customer} agrees with payments.events",
        )
