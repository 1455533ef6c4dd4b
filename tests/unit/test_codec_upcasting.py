"""Upcasters: explicit functions for what Avro resolution cannot express. The ones here are test-only."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from orderstream.domain.events import OrderLine, OrderPlaced
from orderstream.schemas.catalog import SchemaCatalog, SchemaEntry, default_catalog, fingerprint_of
from orderstream.schemas.codec import Codec
from orderstream.schemas.errors import CatalogError, DecodeError, DecodeFailure
from orderstream.schemas.upcasting import UpcasterRegistry

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PLACED = OrderPlaced(
    event_id="e-1",
    version=1,
    occurred_at=AT,
    correlation_id="o-1",
    causation_id="c-1",
    order_id="o-1",
    customer_id="web:cust-1",
    currency="EUR",
    lines=(OrderLine(sku="A", quantity=2, unit_price_minor=150),),
    total_minor=300,
    channel=None,
)


def write_v1(message: OrderPlaced) -> bytes:
    v1 = default_catalog().version("OrderPlaced", 1)
    record = {f.name: getattr(message, f.name) for f in dataclasses.fields(message) if f.name != "channel"}
    record["lines"] = [dataclasses.asdict(line) for line in message.lines]
    buffer = io.BytesIO(v1.header)
    buffer.seek(0, io.SEEK_END)
    schemaless_writer(buffer, v1.schema, record)
    return buffer.getvalue()


def channel_from_customer_prefix(record: dict[str, Any]) -> dict[str, Any]:
    """Test-only v1 -> v2: before v2, the channel was smuggled in the customer id as '<channel>:<id>'."""
    assert "channel" not in record, "an upcaster sees the record as its writer wrote it"
    channel, _, customer = record["customer_id"].rpartition(":")
    return {**record, "customer_id": customer, "channel": channel or None}


def catalog_with_order_placed_v3() -> SchemaCatalog:
    """The package's schemas plus an in-memory OrderPlaced v3: v2 with channel moved up (resolution maps it by name)."""
    v2 = default_catalog().newest("OrderPlaced")
    fields = [dict(field) for field in v2.schema["fields"]]
    channel = next(field for field in fields if field["name"] == "channel")
    reordered = [channel, *(field for field in fields if field is not channel)]
    definition = {"type": "record", "name": "OrderPlaced", "namespace": "orderstream.orders", "fields": reordered}
    parsed = parse_schema(definition)
    v3 = SchemaEntry("OrderPlaced", 3, "orders", "orderstream.orders", fingerprint_of(parsed), parsed, "memory")
    return SchemaCatalog([*default_catalog().entries(), v3])


def test_an_upcaster_runs_on_records_written_with_its_version() -> None:
    codec = Codec(upcasters=UpcasterRegistry({("OrderPlaced", 1): channel_from_customer_prefix}))

    decoded = codec.decode(write_v1(PLACED))

    assert decoded == dataclasses.replace(PLACED, customer_id="cust-1", channel="web")


def test_an_upcaster_does_not_touch_newer_records() -> None:
    codec = Codec(upcasters=UpcasterRegistry({("OrderPlaced", 1): channel_from_customer_prefix}))
    message = dataclasses.replace(PLACED, channel="api")

    assert codec.decode(codec.encode(message)) == message


def test_without_an_upcaster_resolution_alone_fills_the_default() -> None:
    assert Codec().decode(write_v1(PLACED)) == PLACED


def test_resolution_runs_after_the_upcaster_up_to_the_newest_version() -> None:
    catalog = catalog_with_order_placed_v3()
    codec = Codec(catalog, upcasters=UpcasterRegistry({("OrderPlaced", 1): channel_from_customer_prefix}))

    from_v1 = codec.decode(write_v1(PLACED))
    v2_value = Codec().encode(dataclasses.replace(PLACED, channel="api"))
    from_v2 = codec.decode(v2_value)

    assert from_v1 == dataclasses.replace(PLACED, customer_id="cust-1", channel="web")
    assert from_v2 == dataclasses.replace(PLACED, channel="api")
    assert codec.encode(PLACED)[2:10] == catalog.newest("OrderPlaced").fingerprint != v2_value[2:10]


def test_chained_upcasters_each_see_their_own_version() -> None:
    seen: list[tuple[int, frozenset[str]]] = []

    def from_v1(record: dict[str, Any]) -> dict[str, Any]:
        seen.append((1, frozenset(record)))
        return channel_from_customer_prefix(record)

    def from_v2(record: dict[str, Any]) -> dict[str, Any]:
        seen.append((2, frozenset(record)))
        return {**record, "channel": (record["channel"] or "").upper() or None}

    codec = Codec(
        catalog_with_order_placed_v3(),
        upcasters=UpcasterRegistry({("OrderPlaced", 1): from_v1, ("OrderPlaced", 2): from_v2}),
    )

    decoded = codec.decode(write_v1(PLACED))

    assert decoded.channel == "WEB"
    assert [version for version, _ in seen] == [1, 2]
    assert "channel" not in seen[0][1] and "channel" in seen[1][1]


def test_an_upcaster_that_fails_is_a_decode_error() -> None:
    def broken(record: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("no such field")

    codec = Codec(upcasters=UpcasterRegistry({("OrderPlaced", 1): broken}))

    with pytest.raises(DecodeError) as raised:
        codec.decode(write_v1(PLACED))

    assert raised.value.reason == DecodeFailure.UPCAST_FAILED
    assert (raised.value.type_name, raised.value.version) == ("OrderPlaced", 1)


def test_an_upcaster_that_returns_the_wrong_shape_is_a_decode_error() -> None:
    codec = Codec(upcasters=UpcasterRegistry({("OrderPlaced", 1): lambda record: {"order_id": "o"}}))

    with pytest.raises(DecodeError) as raised:
        codec.decode(write_v1(PLACED))

    assert raised.value.reason == DecodeFailure.UNMAPPED


def test_an_upcaster_from_the_newest_version_is_refused() -> None:
    with pytest.raises(CatalogError, match="OrderPlaced v2 has no v3"):
        Codec(upcasters=UpcasterRegistry({("OrderPlaced", 2): channel_from_customer_prefix}))
    with pytest.raises(CatalogError, match="NoSuchType v1"):
        Codec(upcasters=UpcasterRegistry({("NoSuchType", 1): channel_from_customer_prefix}))


def test_the_registry_is_immutable() -> None:
    registry = UpcasterRegistry({("OrderPlaced", 1): channel_from_customer_prefix})

    with pytest.raises(TypeError):
        registry._upcasters[("OrderPlaced", 2)] = channel_from_customer_prefix  # type: ignore[index]
    assert registry.keys() == (("OrderPlaced", 1),)
