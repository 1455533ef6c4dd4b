"""The inventory service against the real broker: restock through the CLI, reservations re-keyed by SKU and answered
per order, releases once, state rebuilt from both changelogs, no oversell with two instances racing, and the stock view.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime

from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.domain.commands import RestockSku
from orderstream.domain.events import (
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderRejected,
    StockAdded,
    StockReleased,
    StockReservationRejected,
    StockReserved,
)
from orderstream.kafka.consistency import ConsistencyToken
from orderstream.producers.commands import CommandSender
from orderstream.services.inventory_service import InventoryService
from orderstream.topology import (
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_ORDERS,
    INVENTORY_REPLIES,
    INVENTORY_RESULTS,
)
from tests.support.event_log import EventLog
from tests.support.orders import RunningService, read_topic

runner = CliRunner()
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RESULT_TYPES = (StockReserved, StockReservationRejected, StockReleased)


def base(settings) -> list[str]:
    return [
        "-b",
        settings.effective_bootstrap,
        "--topic-prefix",
        settings.topic_prefix,
        "--data-dir",
        str(settings.data_dir),
    ]


def placed(order_id: str, *lines: tuple[str, int]) -> OrderPlaced:
    order_lines = tuple(OrderLine(sku=sku, quantity=qty, unit_price_minor=100) for sku, qty in lines)
    return OrderPlaced(
        event_id=f"{order_id}-1",
        version=1,
        occurred_at=T0,
        correlation_id=order_id,
        causation_id="cmd",
        order_id=order_id,
        customer_id="c-1",
        currency="EUR",
        lines=order_lines,
        total_minor=sum(line.amount_minor for line in order_lines),
    )


def ended(kind, order_id: str, version: int):
    return kind(
        event_id=f"{order_id}-{version}",
        version=version,
        occurred_at=T0,
        correlation_id=order_id,
        causation_id="x",
        order_id=order_id,
        reason="test",
    )


@contextmanager
def running_inventory(settings, **overrides):
    running = RunningService(InventoryService(settings, **overrides)).start()
    try:
        yield running
    finally:
        running.stop()


def owned(running: RunningService) -> dict[str, set[int]]:
    """Partitions each stage owns right now (empty until the service has built its processors)."""
    processors = dict(running.service.processors)
    return {name: set(processors[name].owned) if name in processors else set() for name in ("orders", "stock")}


def results(settings, until=None, timeout_s: float = 30.0) -> list:
    return [(rec, e) for rec, e in read_topic(settings, INVENTORY_RESULTS, until=until, timeout_s=timeout_s)]


def restock(settings, sku: str, quantity: int):
    with CommandSender(settings, INVENTORY_COMMANDS, INVENTORY_REPLIES, source="orderstream/test") as sender:
        command_id = str(uuid.uuid4())
        return sender.send_and_wait(
            RestockSku(command_id=command_id, issued_at=T0, correlation_id=command_id, sku=sku, quantity=quantity)
        )


def test_restock_reserve_release_once_and_rebuild_from_the_changelogs(topics):
    bad = runner.invoke(app, [*base(topics), "stock", "add", "SKU-A", "0", "--wait"])
    assert bad.exit_code == 1 and bad.stderr.strip().splitlines() == [
        "error: quantity of SKU-A must be greater than 0, got 0"
    ]
    assert read_topic(topics, INVENTORY_COMMANDS) == [], "bad input produces nothing"

    log = EventLog(topics)
    with running_inventory(topics):
        added = runner.invoke(app, [*base(topics), "stock", "add", "SKU-A", "5", "--wait", "--json"])
        assert added.exit_code == 0, added.stderr
        body = json.loads(added.stdout)
        assert body | {"command_id": None, "token": None} == {
            "sku": "SKU-A",
            "quantity": 5,
            "accepted": True,
            "version": 1,
            "reason": None,
            "token": None,
            "command_id": None,
        }
        assert ConsistencyToken.parse(body["token"]).topic == INVENTORY_EVENTS

        [(order_partition, _)] = log.write([placed("o-1", ("SKU-A", 2), ("SKU-B", 1))])  # no SKU-B in stock
        answered = results(topics, until=lambda rs: len(rs) >= 2)
        log.write([ended(OrderRejected, "o-1", 3)])
        log.write([ended(OrderRejected, "o-1", 3)])  # a repeat: nothing more
        answered = results(topics, until=lambda rs: len(rs) >= 3)

    by_type = {type(e): (rec, e) for rec, e in answered}
    assert len(answered) == 3 and set(by_type) == set(RESULT_TYPES)
    assert all(rec.key() == b"o-1" and rec.partition() == order_partition for rec, _ in answered), (
        "results are keyed by the order id and land on the order's partition"
    )
    reserved, rejected, released = (by_type[t][1] for t in RESULT_TYPES)
    assert (reserved.sku, reserved.quantity, reserved.on_hand, reserved.reserved) == ("SKU-A", 2, 5, 2)
    assert (rejected.sku, rejected.available, rejected.reason) == ("SKU-B", 0, "only 0 of SKU-B available, 1 wanted")
    assert (released.sku, released.quantity, released.reserved) == ("SKU-A", 2, 0)

    stock = read_topic(topics, INVENTORY_EVENTS)
    assert [(rec.key(), type(e), e.version) for rec, e in stock if e.sku == "SKU-A"] == [
        (b"SKU-A", StockAdded, 1),
        (b"SKU-A", StockReserved, 2),
        (b"SKU-A", StockReleased, 3),
    ]
    assert {e.event_id for _, e in stock} >= {e.event_id for _, e in answered}, "the same events, keyed by order id"
    assert [type(e) for _, e in read_topic(topics, INVENTORY_ORDERS)] == [OrderPlaced, OrderRejected]

    # a fresh start without the state cache: both stages rebuild from their changelogs (o-1 stays released,
    # SKU-A has 5 available again)
    shutil.rmtree(topics.data_dir / "state" / "inventory")
    with running_inventory(topics):
        log.write([ended(OrderCancelled, "o-1", 4), placed("o-2", ("SKU-A", 5))])
        answered = results(topics, until=lambda es: any(e.order_id == "o-2" for e in es))
    log.close()
    assert [(type(e), e.order_id) for _, e in answered][3:] == [(StockReserved, "o-2")]
    assert answered[-1][1].reserved == 5 and answered[-1][1].on_hand == 5


def test_two_instances_never_oversell_and_answer_every_order_once(topics):
    orders = [f"o-race-{i}" for i in range(200)]
    log = EventLog(topics)

    def write(chunk: list[str]) -> None:
        for start in range(0, len(chunk), 10):
            log.write([placed(o, ("SKU-R", 1)) for o in chunk[start : start + 10]])

    a = RunningService(InventoryService(topics)).start()
    b = None
    try:
        assert restock(topics, "SKU-R", 50).reply.accepted
        write(orders[:60])  # A alone
        b = RunningService(InventoryService(topics)).start()  # joins mid-stream: both groups rebalance
        deadline = time.monotonic() + 30
        while not all(owned(a)[s] and owned(b)[s] for s in ("orders", "stock")):
            assert b.error is None and time.monotonic() < deadline, (owned(a), owned(b))
            time.sleep(0.05)
        write(orders[60:130])  # A and B share the partitions
        results(topics, until=lambda es: len(es) >= 130, timeout_s=60)
        a.stop()  # B takes over everything, SKU-R's partition included, rebuilding its state
        write(orders[130:])
        answered = results(topics, until=lambda es: len(es) >= 200, timeout_s=60)
    finally:
        if a.thread.is_alive():
            a.stop()
        if b is not None:
            b.stop()
    log.close()

    assert all(r.service.processors["orders"].batches_committed > 0 for r in (a, b)), "both instances did work"
    spec_a, spec_b = (r.service.processors["stock"].spec for r in (a, b))
    assert spec_a.transactional_id != spec_b.transactional_id
    assert Counter(type(e) for _, e in answered) == {StockReserved: 50, StockReservationRejected: 150}
    assert Counter(e.order_id for _, e in answered) == Counter(orders), "every order answered exactly once"
    assert all(rec.key().decode() == e.order_id for rec, e in answered)

    stream = [e for _, e in read_topic(topics, INVENTORY_EVENTS) if e.sku == "SKU-R"]
    assert [e.version for e in stream] == list(range(1, 202))
    on_hand = reserved = 0
    for event in stream:  # the SKU's stream, in order: never more reserved than on hand
        if isinstance(event, StockAdded):
            on_hand = event.on_hand
        elif isinstance(event, StockReserved):
            on_hand, reserved = event.on_hand, event.reserved
        assert 0 <= reserved <= on_hand, event
    assert (on_hand, reserved) == (50, 50)


def test_stock_view_shows_on_hand_reserved_and_available(topics):
    from orderstream.runtime.projector import Projector
    from orderstream.views.registry import spec_of

    log = EventLog(topics)
    projector = RunningService(Projector(topics, spec_of("stock-view"))).start()
    try:
        with running_inventory(topics):
            assert restock(topics, "SKU-V", 10).reply.accepted
            assert restock(topics, "SKU-W", 1).reply.accepted
            log.write([placed("o-v1", ("SKU-V", 3)), placed("o-v2", ("SKU-V", 8), ("SKU-W", 1))])
            results(topics, until=lambda rs: len(rs) >= 3)
        stream = [(rec, e) for rec, e in read_topic(topics, INVENTORY_EVENTS) if e.sku == "SKU-V"]
        last = max((rec.offset(), rec.partition()) for rec, _ in stream)
        token = f"{INVENTORY_EVENTS}:{last[1]}:{last[0]}"
        # o-v1 (3) and o-v2 (8) are different orders, so either may reach SKU-V first; exactly one fits in 10
        reserved = sum(e.quantity for _, e in stream if isinstance(e, StockReserved))
        assert reserved in (3, 8)
        one = runner.invoke(
            app, [*base(topics), "query", "stock", "SKU-V", "--after", token, "--timeout", "90", "--json"]
        )
        assert one.exit_code == 0, one.stderr
        assert json.loads(one.stdout) == [
            {"sku": "SKU-V", "on_hand": 10, "reserved": reserved, "available": 10 - reserved}
        ]
        every = runner.invoke(app, [*base(topics), "query", "stock", "--json"])
        assert every.exit_code == 0, every.stderr
        skus = {row["sku"]: row for row in json.loads(every.stdout)}
        assert skus["SKU-V"]["available"] == 10 - reserved
        missing = runner.invoke(app, [*base(topics), "query", "stock", "SKU-NONE"])
        assert missing.exit_code == 1 and "not found" in missing.stderr
    finally:
        projector.stop()
        log.close()
