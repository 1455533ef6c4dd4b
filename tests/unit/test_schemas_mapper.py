"""The mapper: dataclass <-> Avro record, driven by type hints."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from orderstream.domain.commands import CancelOrder
from orderstream.domain.events import OrderLine, OrderLineReservationUpdated, OrderPlaced, ReservationStatus
from orderstream.schemas.catalog import default_catalog
from orderstream.schemas.codec import Codec
from orderstream.schemas.errors import CatalogError, EncodeError
from orderstream.schemas.mapper import Mapper

AT = datetime(2025, 1, 2, tzinfo=UTC)


def test_nested_lines_become_a_list_of_records_and_come_back_as_a_tuple() -> None:
    mapper = Mapper()
    event = OrderPlaced(
        event_id="e",
        version=1,
        occurred_at=AT,
        correlation_id="o",
        causation_id="c",
        order_id="o",
        customer_id="cu",
        currency="EUR",
        lines=(OrderLine(sku="A", quantity=2, unit_price_minor=5),),
        total_minor=10,
    )

    record = mapper.to_record(event)

    assert record["lines"] == [{"sku": "A", "quantity": 2, "unit_price_minor": 5}]
    assert record["channel"] is None
    assert record["occurred_at"] is AT
    assert mapper.from_record(OrderPlaced, record) == event


def test_enums_travel_as_their_symbol() -> None:
    mapper = Mapper()
    event = OrderLineReservationUpdated(
        event_id="e",
        version=1,
        occurred_at=AT,
        correlation_id="o",
        causation_id="c",
        order_id="o",
        sku="A",
        reservation_status=ReservationStatus.RELEASED,
    )

    record = mapper.to_record(event)

    assert record["reservation_status"] == "RELEASED"
    assert mapper.from_record(OrderLineReservationUpdated, record).reservation_status is ReservationStatus.RELEASED


def test_optional_int_is_none_or_the_value() -> None:
    mapper = Mapper()
    with_version = CancelOrder(command_id="c", issued_at=AT, correlation_id="o", order_id="o", expected_version=3)

    assert mapper.to_record(with_version)["expected_version"] == 3
    assert mapper.to_record(dataclasses.replace(with_version, expected_version=None))["expected_version"] is None


def test_unsupported_field_types_are_refused_when_the_plan_is_built() -> None:
    @dataclasses.dataclass(frozen=True)
    class Weird:
        ratio: float

    mapper = Mapper([Weird])

    with pytest.raises(TypeError, match=r"Weird\.ratio: no Avro mapping"):
        mapper.to_record(Weird(ratio=0.5))


def test_unions_other_than_optional_are_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Either:
        value: int | str

    with pytest.raises(TypeError, match=r"only X \| None unions"):
        Mapper([Either]).field_names(Either)


def test_an_unregistered_instance_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        Mapper([CancelOrder]).to_record(OrderLine(sku="A", quantity=1, unit_price_minor=1))


def test_two_registered_classes_with_one_name_are_refused() -> None:
    clash = dataclasses.make_dataclass("CancelOrder", [("order_id", str)], frozen=True)

    with pytest.raises(TypeError, match="two registered classes are named CancelOrder"):
        Mapper([CancelOrder, clash])


def test_a_codec_refuses_a_catalog_whose_newest_schema_lacks_a_dataclass_field() -> None:
    """A catalog where OrderPlaced stops at v1 (no channel) cannot serve today's OrderPlaced."""
    from orderstream.schemas.catalog import SchemaCatalog

    entries = [e for e in default_catalog().entries() if not (e.type_name == "OrderPlaced" and e.version == 2)]

    with pytest.raises(CatalogError, match=r"OrderPlaced\.v1 does not match its dataclass.*\['channel'\]"):
        Codec(SchemaCatalog(entries))


def test_a_codec_refuses_a_catalog_missing_a_registered_type() -> None:
    from orderstream.schemas.catalog import SchemaCatalog

    entries = [e for e in default_catalog().entries() if e.type_name != "Reply"]

    with pytest.raises(CatalogError, match="Reply is registered but has no schema"):
        Codec(SchemaCatalog(entries))
