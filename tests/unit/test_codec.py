"""The codec: round trips, the OrderPlaced v1 -> v2 evolution, CloudEvents headers and every way a value can be bad."""

from __future__ import annotations

import dataclasses
import enum
import io
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer

from orderstream.domain.commands import ALL_COMMANDS, PlaceOrder, Reply
from orderstream.domain.events import ALL_EVENTS, OrderConfirmed, OrderLine, OrderPlaced
from orderstream.schemas.catalog import MAGIC, default_catalog
from orderstream.schemas.cloudevents import read_headers
from orderstream.schemas.codec import Codec
from orderstream.schemas.errors import DecodeError, DecodeFailure, EncodeError
from orderstream.schemas.mapper import registered_classes

AT = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def sample(cls: type, seed: int = 7) -> Any:
    """An instance of a registered class with every field set to a non-default value (optionals included)."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _value(hints[f.name], f"{f.name}-{seed}", seed) for f in dataclasses.fields(cls)})


def _value(hint: Any, text: str, seed: int) -> Any:
    if hint is str:
        return text
    if hint is bool:
        return True
    if hint is int:
        return 1_000_000_000_000 + seed
    if hint is datetime:
        return AT + timedelta(seconds=seed)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return list(hint)[-1]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _value(next(arm for arm in typing.get_args(hint) if arm is not type(None)), text, seed)
    if typing.get_origin(hint) is tuple:
        return tuple(_value(typing.get_args(hint)[0], f"{text}-{i}", seed + i) for i in range(2))
    return sample(hint, seed)


def placed(**changes: Any) -> OrderPlaced:
    base = OrderPlaced(
        event_id="e-1",
        version=1,
        occurred_at=AT,
        correlation_id="o-1",
        causation_id="c-1",
        order_id="o-1",
        customer_id="cust-1",
        currency="EUR",
        lines=(
            OrderLine(sku="A", quantity=2, unit_price_minor=150),
            OrderLine(sku="B", quantity=1, unit_price_minor=99),
        ),
        total_minor=399,
        channel="cli",
    )
    return dataclasses.replace(base, **changes)


# --- round trips ------------------------------------------------------------------------------------------------


def test_every_domain_event_command_and_reply_is_registered() -> None:
    assert set(registered_classes()) == {*ALL_EVENTS, *ALL_COMMANDS, Reply}


@pytest.mark.parametrize("cls", registered_classes(), ids=lambda cls: cls.__name__)
def test_round_trip_of_every_type(codec: Codec, cls: type) -> None:
    message = sample(cls)

    value = codec.encode(message)

    assert value[:2] == MAGIC
    assert value[2:10] == default_catalog().newest(cls.__name__).fingerprint
    decoded = codec.decode(value)
    assert type(decoded) is cls
    assert decoded == message


def test_round_trip_keeps_optional_fields_unset(codec: Codec) -> None:
    reply = Reply(
        command_id="c", aggregate_id="o", accepted=False, version=0, reason="no", replied_at=AT, correlation_id="o"
    )

    assert codec.decode(codec.encode(reply)) == reply


def test_decoded_times_are_utc_and_keep_microseconds(codec: Codec) -> None:
    paris = timezone(timedelta(hours=2))
    message = placed(occurred_at=datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=paris))

    decoded = codec.decode(codec.encode(message))

    assert decoded.occurred_at == datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert decoded.occurred_at.utcoffset() == timedelta(0)


def test_decode_accepts_bytearray_and_memoryview(codec: Codec) -> None:
    value = codec.encode(placed())

    assert codec.decode(bytearray(value)) == placed()
    assert codec.decode(memoryview(value)) == placed()


def test_writer_of_names_the_schema_from_the_header_alone(codec: Codec) -> None:
    entry = codec.writer_of(codec.encode(placed())[:10])

    assert (entry.type_name, entry.version, entry.ce_type) == ("OrderPlaced", 2, "orderstream.orders.OrderPlaced.v2")


# --- the OrderPlaced v1 -> v2 evolution ---------------------------------------------------------------------------


def _write_v1(message: OrderPlaced) -> bytes:
    v1 = default_catalog().version("OrderPlaced", 1)
    record = {f.name: getattr(message, f.name) for f in dataclasses.fields(message) if f.name != "channel"}
    record["lines"] = [dataclasses.asdict(line) for line in message.lines]
    buffer = io.BytesIO()
    buffer.write(MAGIC + v1.fingerprint)
    schemaless_writer(buffer, v1.schema, record)
    return buffer.getvalue()


def test_v1_order_placed_decodes_as_v2_with_no_channel(codec: Codec) -> None:
    value = _write_v1(placed(channel="ignored by v1"))

    decoded = codec.decode(value)

    assert decoded == placed(channel=None)


def test_v2_order_placed_reads_under_a_v1_reader(codec: Codec) -> None:
    catalog = default_catalog()
    value = codec.encode(placed(channel="api"))

    record = schemaless_reader(
        io.BytesIO(value[10:]), catalog.version("OrderPlaced", 2).schema, catalog.version("OrderPlaced", 1).schema
    )

    assert "channel" not in record
    assert record["order_id"] == "o-1"
    assert record["lines"] == [
        {"sku": "A", "quantity": 2, "unit_price_minor": 150},
        {"sku": "B", "quantity": 1, "unit_price_minor": 99},
    ]
    assert record["occurred_at"] == AT


def test_v1_and_v2_fingerprints_differ_and_only_v2_has_channel() -> None:
    catalog = default_catalog()
    v1, v2 = catalog.versions("OrderPlaced")

    assert v1.fingerprint != v2.fingerprint
    assert "channel" not in {field["name"] for field in v1.schema["fields"]}
    channel = next(field for field in v2.schema["fields"] if field["name"] == "channel")
    assert channel["type"] == ["null", "string"]
    assert channel["default"] is None


# --- CloudEvents headers -------------------------------------------------------------------------------------------


def test_headers_of_an_event(codec: Codec) -> None:
    headers = codec.headers(placed(), source="orderstream/order-service")

    assert all(isinstance(value, bytes) for _, value in headers)
    assert read_headers(headers) == {
        "ce_specversion": "1.0",
        "ce_id": "e-1",
        "ce_source": "orderstream/order-service",
        "ce_type": "orderstream.orders.OrderPlaced.v2",
        "ce_time": "2025-01-02T03:04:05.678901Z",
        "ce_subject": "o-1",
        "content-type": "application/avro",
        "ce_correlationid": "o-1",
        "ce_causationid": "c-1",
    }


def test_headers_of_a_command_are_caused_by_the_command_itself(codec: Codec) -> None:
    command = PlaceOrder(
        command_id="cmd-1",
        issued_at=AT,
        correlation_id="o-9",
        order_id="o-9",
        customer_id="c",
        currency="EUR",
        lines=(OrderLine(sku="A", quantity=1, unit_price_minor=1),),
    )

    headers = read_headers(codec.headers(command, source="orderstream/cli"))

    assert headers["ce_id"] == "cmd-1"
    assert headers["ce_causationid"] == "cmd-1"
    assert headers["ce_type"] == "orderstream.commands.PlaceOrder.v1"
    assert headers["ce_subject"] == "o-9"


def test_headers_of_a_reply_derive_their_id_from_the_command(codec: Codec) -> None:
    reply = Reply(
        command_id="cmd-1", aggregate_id="SKU-1", accepted=True, version=3, reason="", replied_at=AT, correlation_id="x"
    )

    headers = read_headers(codec.headers(reply, source="orderstream/inventory-service"))

    assert headers["ce_id"] == "cmd-1/reply"
    assert headers["ce_causationid"] == "cmd-1"
    assert headers["ce_subject"] == "SKU-1"
    assert headers["ce_type"] == "orderstream.replies.Reply.v1"


def test_read_headers_accepts_none_and_missing_values() -> None:
    assert read_headers(None) == {}
    assert read_headers([("a", None), ("b", b"x"), ("c", "y")]) == {"a": "", "b": "x", "c": "y"}


# --- encode errors ---------------------------------------------------------------------------------------------------


def test_encoding_an_unregistered_object_is_an_encode_error(codec: Codec) -> None:
    @dataclasses.dataclass(frozen=True)
    class OrderConfirmed:  # same name as the domain class, but not it
        order_id: str

    with pytest.raises(EncodeError, match="not a registered message type"):
        codec.encode(OrderConfirmed(order_id="o"))
    with pytest.raises(EncodeError):
        codec.encode({"order_id": "o"})
    with pytest.raises(EncodeError):
        codec.headers(object(), source="x")


def test_encoding_a_naive_datetime_is_an_encode_error(codec: Codec) -> None:
    with pytest.raises(EncodeError, match="timezone-aware"):
        codec.encode(placed(occurred_at=datetime(2025, 1, 1)))


@pytest.mark.parametrize(
    "changes",
    [
        {"total_minor": "399"},
        {"total_minor": 399.0},
        {"total_minor": True},
        {"total_minor": 2**63},
        {"order_id": None},
        {"lines": (("A", 1, 2),)},
        {"lines": (OrderLine(sku="A", quantity=1.5, unit_price_minor=2),)},
        {"channel": 5},
    ],
    ids=[
        "string-for-long",
        "float-for-long",
        "bool-for-long",
        "long-overflow",
        "null-for-string",
        "tuple-for-record",
        "float-in-nested-record",
        "long-for-optional-string",
    ],
)
def test_a_value_that_does_not_fit_its_schema_is_an_encode_error(codec: Codec, changes: dict[str, Any]) -> None:
    with pytest.raises(EncodeError) as raised:
        codec.encode(placed(**changes))

    assert raised.value.type_name == "OrderPlaced"


# --- decode errors ---------------------------------------------------------------------------------------------------


def _reason(codec: Codec, value: Any) -> DecodeFailure:
    with pytest.raises(DecodeError) as raised:
        codec.decode(value)
    return raised.value.reason


def test_empty_value(codec: Codec) -> None:
    assert _reason(codec, b"") == DecodeFailure.EMPTY


def test_not_bytes(codec: Codec) -> None:
    assert _reason(codec, "c301") == DecodeFailure.NOT_BYTES
    assert _reason(codec, None) == DecodeFailure.NOT_BYTES


@pytest.mark.parametrize("value", [b"\x00", b"{}", b'{"order_id": "o-1"}', b"\xc3\x02" + bytes(20), b"\x00\x01\x02"])
def test_bad_magic(codec: Codec, value: bytes) -> None:
    assert _reason(codec, value) == DecodeFailure.BAD_MAGIC


def test_truncated_header(codec: Codec) -> None:
    value = codec.encode(placed())

    for size in range(1, 10):
        assert _reason(codec, value[:size]) == DecodeFailure.TRUNCATED_HEADER


def test_unknown_fingerprint(codec: Codec) -> None:
    value = codec.encode(placed())
    unknown = MAGIC + bytes(reversed(value[2:10])) + value[10:]

    with pytest.raises(DecodeError) as raised:
        codec.decode(unknown)

    assert raised.value.reason == DecodeFailure.UNKNOWN_FINGERPRINT
    assert bytes(reversed(value[2:10])).hex() in str(raised.value)


def test_every_truncation_of_the_body_is_a_decode_error(codec: Codec) -> None:
    value = codec.encode(placed())

    for size in range(10, len(value)):
        with pytest.raises(DecodeError) as raised:
            codec.decode(value[:size])
        assert raised.value.reason == DecodeFailure.BAD_BODY
        assert (raised.value.type_name, raised.value.version) == ("OrderPlaced", 2)


@pytest.mark.parametrize("garbage", [b"\x00", b"trailing", bytes(100)])
def test_trailing_bytes_after_the_body(codec: Codec, garbage: bytes) -> None:
    value = codec.encode(placed()) + garbage

    assert _reason(codec, value) == DecodeFailure.TRAILING_BYTES


def confirmed(**changes: Any) -> OrderConfirmed:
    base = OrderConfirmed(event_id="e", version=2, occurred_at=AT, correlation_id="o", causation_id="c", order_id="o")
    return dataclasses.replace(base, **changes)


def test_a_body_of_another_type_does_not_decode(codec: Codec) -> None:
    """The header of OrderPlaced on the body of OrderConfirmed: the body does not parse as OrderPlaced."""
    confirmed_value = codec.encode(confirmed())
    mixed = codec.encode(placed())[:10] + confirmed_value[10:]

    assert _reason(codec, mixed) in (DecodeFailure.BAD_BODY, DecodeFailure.TRAILING_BYTES)


def test_invalid_utf8_in_a_string_is_a_decode_error(codec: Codec) -> None:
    value = bytearray(codec.encode(placed(event_id="ab")))
    assert value[10:13] == b"\x04ab"
    value[11:13] = b"\xff\xfe"

    assert _reason(codec, bytes(value)) == DecodeFailure.BAD_BODY


def test_an_enum_index_out_of_range_is_a_decode_error(codec: Codec) -> None:
    from orderstream.domain.events import OrderPaymentUpdated, PaymentStatus

    event = OrderPaymentUpdated(
        event_id="e",
        version=1,
        occurred_at=AT,
        correlation_id="o",
        causation_id="c",
        order_id="o",
        payment_status=PaymentStatus.PENDING,
        reason="",
    )
    value = codec.encode(event)
    # the body ends with: enum index (zig-zag 0 = b"\x00"), then reason "" (b"\x00")
    assert value[-2:] == b"\x00\x00"
    broken = value[:-2] + b"\x7e\x00"  # zig-zag 63: no such symbol

    assert _reason(codec, broken) == DecodeFailure.BAD_BODY


def test_a_timestamp_out_of_the_datetime_range_is_a_decode_error(codec: Codec) -> None:
    value = codec.encode(confirmed(version=1))
    # body: event_id "e" (02 65), version 1 (02), then occurred_at as a zig-zag varint: replace it with 2**62
    start = 10 + 3
    end = start
    while value[end] & 0x80:
        end += 1
    huge = bytearray()
    number = (2**62) << 1
    while number > 0x7F:
        huge.append((number & 0x7F) | 0x80)
        number >>= 7
    huge.append(number)

    assert _reason(codec, value[:start] + bytes(huge) + value[end + 1 :]) == DecodeFailure.BAD_BODY


def test_decode_error_message_names_reason_and_writer(codec: Codec) -> None:
    value = codec.encode(placed())[:-1]

    with pytest.raises(DecodeError, match=r"^bad_body \(OrderPlaced v2\): "):
        codec.decode(value)
