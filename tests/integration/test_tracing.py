"""One order followed as ONE trace: from the `place` command's send through the order, payment, inventory and
shipping services to the order view's apply, with the SDK's in-memory exporter.

The services run in threads of this process (built by the composition root, as `run` builds them), all sharing the
test's tracer provider; each span says which service made it (orderstream.service / orderstream.view).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime

import pytest

from orderstream.domain.commands import RestockSku
from orderstream.domain.events import OrderLine
from orderstream.producers.commands import CommandSender
from orderstream.services.composition import build_service
from orderstream.services.projections import build_projections
from orderstream.telemetry import tracing
from orderstream.topology import INVENTORY_COMMANDS, INVENTORY_REPLIES, ORDERS_COMMANDS, ORDERS_REPLIES
from tests.support.orders import RunningService, place_order

SERVICES = ("order", "payment", "inventory", "shipping")


@pytest.fixture
def exporter():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = tracing.new_provider("test", sampling_ratio=1.0)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


def _trace_of(exporter, trace_id: int) -> list:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def _complete(spans) -> bool:
    services = {s.attributes.get("orderstream.service") for s in spans}
    applied = any(s.attributes.get("orderstream.view") == "order-view" and s.name.startswith("apply") for s in spans)
    shipped = any(s.attributes.get("orderstream.service") == "shipping" for s in spans)
    return set(SERVICES) <= services and applied and shipped


def test_one_order_is_one_trace_from_place_through_every_service_to_the_order_view(topics, exporter):
    settings = topics
    running = [RunningService(build_service(name, settings)).start() for name in SERVICES]
    running.append(RunningService(build_projections(settings, ("order-view",))).start())
    try:
        sku = f"SKU-{uuid.uuid4().hex[:6]}"
        with CommandSender(settings, INVENTORY_COMMANDS, INVENTORY_REPLIES) as stock:
            restock_id = str(uuid.uuid4())
            restock = RestockSku(
                command_id=restock_id, issued_at=datetime.now(UTC), correlation_id=restock_id, sku=sku, quantity=10
            )
            assert stock.send_and_wait(restock, timeout_s=60).reply.accepted
        order_id = f"traced-{uuid.uuid4().hex[:10]}"
        command = place_order(order_id)
        command = dataclasses.replace(command, lines=(OrderLine(sku=sku, quantity=1, unit_price_minor=1234),))
        with CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES) as orders:
            assert orders.send_and_wait(command, timeout_s=60).reply.accepted

        sends = [
            s
            for s in exporter.get_finished_spans()
            if s.name == "send orders.commands" and s.attributes.get("messaging.message.id") == command.command_id
        ]
        assert len(sends) == 1
        trace_id = sends[0].context.trace_id
        deadline = time.monotonic() + 90
        while not _complete(_trace_of(exporter, trace_id)):
            for service in running:
                assert service.thread.is_alive(), f"{service.service.name} stopped: {service.error}"
            if time.monotonic() > deadline:
                seen = sorted(
                    {(s.name, s.attributes.get("orderstream.service")) for s in _trace_of(exporter, trace_id)}
                )
                pytest.fail(f"the trace never reached every service and the order view; it has {seen}")
            time.sleep(0.3)
    finally:
        for service in running:
            service.stop()

    spans = _trace_of(exporter, trace_id)
    # ONE trace: every span but the send has its parent in it, so it is a single tree rooted at `place`'s send
    ids = {s.context.span_id for s in spans}
    roots = [s for s in spans if s.parent is None or s.parent.span_id not in ids]
    assert roots == sends, [(s.name, s.parent) for s in roots]
    by_service = {s.attributes.get("orderstream.service") for s in spans}
    assert set(SERVICES) <= by_service
    stages = {s.attributes.get("orderstream.stage") for s in spans}
    assert {"order", "payment-orders", "payment-customers", "inventory-orders", "inventory-stock", "shipping"} <= stages
    # the order service decided the command itself in this trace, as a child of the send
    decided = next(s for s in spans if s.name == "process orders.commands")
    assert decided.parent.span_id == sends[0].context.span_id
    assert decided.attributes["messaging.kafka.message.key"] == order_id
    # batch spans (OTEP 0220): a trace of their own, linking to each record's context, the record spans link back
    batches = {
        s.context.span_id: s
        for s in exporter.get_finished_spans()
        if s.name.startswith("process ") and "messaging.batch.message_count" in s.attributes
    }
    view_apply = next(s for s in spans if s.attributes.get("orderstream.view") == "order-view")
    batch = batches[view_apply.links[0].context.span_id]
    assert batch.context.trace_id != trace_id
    assert any(link.context.trace_id == trace_id for link in batch.links)
    assert batch.attributes["messaging.batch.message_count"] >= 1
    # SQL spans of the view's transaction are children of its batch span
    sql = [
        s
        for s in exporter.get_finished_spans()
        if s.context.trace_id == batch.context.trace_id
        and ("db.statement" in s.attributes or "db.query.text" in s.attributes)
    ]
    assert sql, "the SQLAlchemy instrumentation made no span inside the view's batch"
