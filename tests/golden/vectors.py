"""Golden wire vectors: a few messages encoded once, their bytes committed next to this file.

The test decodes each file and compares with the expected object here, and re-encodes the newest-version ones
byte for byte. If that test fails after a schema or codec change, the wire format changed: fix the change, do not
regenerate. Run `.venv/bin/python -m tests.golden.vectors` only to ADD a vector: existing files are never rewritten.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orderstream.domain.commands import CancelOrder, Reply, ReturnItem, ReturnOrder
from orderstream.domain.events import (
    OrderLine,
    OrderLineReservationUpdated,
    OrderPaymentUpdated,
    OrderPlaced,
    OrderReturned,
    PaymentStatus,
    ReservationStatus,
    StockReserved,
)

HERE = Path(__file__).parent
AT = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
ORDER = "ord-20250314-0001"


@dataclass(frozen=True)
class Vector:
    """One golden file: the message it holds, and the schema version it was written with (None: the newest)."""

    file: str
    expected: Any
    writer_version: int | None = None

    @property
    def path(self) -> Path:
        return HERE / self.file


PLACED = OrderPlaced(
    event_id="6f1c2b7e-0d7a-4d6e-9a4f-3b2f1e0c9d8a",
    version=1,
    occurred_at=AT,
    correlation_id=ORDER,
    causation_id="cmd-7c1d",
    order_id=ORDER,
    customer_id="cust-ada",
    currency="EUR",
    lines=(
        OrderLine(sku="SKU-RED-42", quantity=2, unit_price_minor=1999),
        OrderLine(sku="SKU-BLUE-7", quantity=1, unit_price_minor=45000),
    ),
    total_minor=48998,
    channel="cli",
)

VECTORS: tuple[Vector, ...] = (
    Vector("OrderPlaced.v2.bin", PLACED),
    # Written by a v1 producer (no channel field): read today as the newest version, with channel None.
    Vector("OrderPlaced.v1.bin", replace(PLACED, channel=None), writer_version=1),
    Vector(
        "OrderPaymentUpdated.v1.bin",
        OrderPaymentUpdated(
            event_id="0b6c7d2e-1f3a-4b5c-8d9e-0f1a2b3c4d5e",
            version=3,
            occurred_at=AT + timedelta(seconds=2),
            correlation_id=ORDER,
            causation_id="2d4e6f80-1a3b-4c5d-9e7f-8a9b0c1d2e3f",
            order_id=ORDER,
            payment_status=PaymentStatus.AUTHORIZED,
        ),
    ),
    Vector(
        "OrderLineReservationUpdated.v1.bin",
        OrderLineReservationUpdated(
            event_id="9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
            version=2,
            occurred_at=AT + timedelta(seconds=1),
            correlation_id=ORDER,
            causation_id="3e5f7a9b-1c2d-4e3f-a4b5-c6d7e8f90a1b",
            order_id=ORDER,
            sku="SKU-BLUE-7",
            reservation_status=ReservationStatus.REJECTED,
            reason="only 0 available",
        ),
    ),
    Vector(
        "StockReserved.v1.bin",
        StockReserved(
            event_id="3e5f7a9b-1c2d-4e3f-a4b5-c6d7e8f90a1b",
            version=17,
            occurred_at=AT + timedelta(milliseconds=400),
            correlation_id=ORDER,
            causation_id="6f1c2b7e-0d7a-4d6e-9a4f-3b2f1e0c9d8a",
            sku="SKU-RED-42",
            order_id=ORDER,
            quantity=2,
            on_hand=10,
            reserved=6,
        ),
    ),
    Vector(
        "CancelOrder.v1.bin",
        CancelOrder(
            command_id="cmd-9f2e",
            issued_at=AT + timedelta(minutes=5),
            correlation_id=ORDER,
            order_id=ORDER,
            reason="customer changed their mind: ünïcödé ✓",
            expected_version=4,
        ),
    ),
    Vector(
        "Reply.v1.bin",
        Reply(
            command_id="cmd-9f2e",
            aggregate_id=ORDER,
            accepted=True,
            version=5,
            reason="",
            replied_at=AT + timedelta(minutes=5, milliseconds=12),
            correlation_id=ORDER,
            events_topic="orders.events",
            events_partition=2,
            events_offset=1234567890123,
        ),
    ),
    Vector(
        "ReturnOrder.v1.bin",
        ReturnOrder(
            command_id="cmd-ret-1",
            issued_at=AT + timedelta(days=9),
            correlation_id=ORDER,
            order_id=ORDER,
            items=(ReturnItem(sku="SKU-RED-42", quantity=1),),
            reason="too small",
            restock=False,
        ),
    ),
    Vector(
        "OrderReturned.v1.bin",
        OrderReturned(
            event_id="5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
            version=9,
            occurred_at=AT + timedelta(days=9, seconds=1),
            correlation_id=ORDER,
            causation_id="cmd-ret-1",
            order_id=ORDER,
            lines=(OrderLine(sku="SKU-RED-42", quantity=1, unit_price_minor=1999),),
            refund_minor=1999,
            restock=False,
            reason="too small",
            fully_returned=False,
        ),
    ),
)


def encode(vector: Vector) -> bytes:
    """The bytes of a vector: the codec's for the newest version, a plain fastavro write for an older one."""
    from fastavro import schemaless_writer

    from orderstream.schemas.catalog import default_catalog
    from orderstream.schemas.codec import Codec

    codec = Codec()
    if vector.writer_version is None:
        return codec.encode(vector.expected)
    entry = default_catalog().version(type(vector.expected).__name__, vector.writer_version)
    record = codec.mapper.to_record(vector.expected)
    known = {field["name"] for field in entry.schema["fields"]}
    buffer = io.BytesIO()
    buffer.write(entry.header)
    schemaless_writer(buffer, entry.schema, {name: value for name, value in record.items() if name in known})
    return buffer.getvalue()


def main() -> None:
    for vector in VECTORS:
        if vector.path.exists():
            print(f"kept    {vector.file}")
            continue
        vector.path.write_bytes(encode(vector))
        print(f"written {vector.file}")


if __name__ == "__main__":
    main()
