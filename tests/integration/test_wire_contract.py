"""The wire contract, end to end on a real broker: what the codec writes, a plain Kafka client and the .avsc file alone
can read - no orderstream code on the reading side."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Producer
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form

import orderstream.schemas
from orderstream.config import Settings
from orderstream.domain.events import OrderLine, OrderPlaced
from tests.support.wire import CODEC

AVSC = Path(orderstream.schemas.__file__).parent / "avro" / "orders" / "OrderPlaced.v2.avsc"


def test_an_order_placed_is_readable_by_any_client_with_the_avsc_alone(topics: Settings) -> None:
    topic = topics.topic("orders.events")
    order_id = f"ord-{uuid.uuid4().hex[:8]}"
    event = OrderPlaced(
        event_id=str(uuid.uuid4()),
        version=1,
        occurred_at=datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC),
        correlation_id=order_id,
        causation_id="cmd-1",
        order_id=order_id,
        customer_id="cust-ada",
        currency="EUR",
        lines=(OrderLine(sku="SKU-1", quantity=3, unit_price_minor=1250),),
        total_minor=3750,
        channel="cli",
    )

    producer = Producer({"bootstrap.servers": topics.effective_bootstrap, "acks": "all"})
    producer.produce(
        topic,
        key=order_id.encode(),
        value=CODEC.encode(event),
        headers=CODEC.headers(event, source="orderstream/test"),
    )
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": topics.effective_bootstrap,
            "group.id": f"wire-contract-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        message = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.error() is None, "no record arrived within 60 s"
    finally:
        consumer.close()

    assert message.key() == order_id.encode()
    value = message.value()
    schema = parse_schema(json.loads(AVSC.read_text()))
    expected_fingerprint = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == expected_fingerprint
    body = io.BytesIO(value[10:])
    record = schemaless_reader(body, schema, None)
    assert body.tell() == len(value) - 10
    assert record == {
        "event_id": event.event_id,
        "version": 1,
        "occurred_at": event.occurred_at,
        "correlation_id": order_id,
        "causation_id": "cmd-1",
        "order_id": order_id,
        "customer_id": "cust-ada",
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 3, "unit_price_minor": 1250}],
        "total_minor": 3750,
        "channel": "cli",
    }

    headers = {name: value.decode() for name, value in message.headers()}
    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": event.event_id,
        "ce_source": "orderstream/test",
        "ce_type": "orderstream.orders.OrderPlaced.v2",
        "ce_time": "2025-03-14T15:09:26.535897Z",
        "ce_subject": order_id,
        "content-type": "application/avro",
        "ce_correlationid": order_id,
        "ce_causationid": "cmd-1",
    }
