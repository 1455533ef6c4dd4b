"""The web console's pure parts: how values are shown, how a dead letter's bytes are decoded, which requests pass the
API token check without the token, and what a page derives from an order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderstream.api.console.formatting import age, money, when
from orderstream.api.console.letters import decode_value
from orderstream.api.console.order_pages import parse_since, shipment_state
from orderstream.api.console.pages import public_request
from orderstream.schemas.codec import Codec
from orderstream.views.base import QueryError
from tests.support.orders import place_order


def test_money_ages_and_times_read_as_people_write_them():
    assert money(1250, "EUR") == "12.50 EUR"
    assert money(1250, "JPY") == "1250 JPY"
    assert money(None, "EUR") == "-"
    assert money(5, "??") == "5 (minor units)"
    assert age(None) == "-" and age(12.34) == "12.3 s" and age(600) == "10 min" and age(4000 * 3) == "3 h 20 min"
    assert when("2026-12-06T13:27:39.123456Z") == "2026-12-06 13:27:39 UTC"
    assert when(None) == "-"


def test_a_letter_is_decoded_with_the_wire_contract_else_as_text_else_shown_as_hex():
    avro = decode_value(Codec().encode(place_order("o-1")))
    assert avro.kind == "avro" and '"type": "PlaceOrder"' in avro.text and '"order_id": "o-1"' in avro.text
    text = decode_value(b'{"not": "the contract"}')
    assert text.kind == "text" and text.text == '{"not": "the contract"}'
    binary = decode_value(b"\x00\x01garbage\xff")
    assert binary.kind == "binary" and binary.text is None
    assert binary.hex_lines == ["00000000  00 01 67 61 72 62 61 67 65 ff                    ..garbage."]
    assert decode_value(None).kind == "empty"
    big = decode_value(bytes(5000))
    assert big.truncated and len(big.hex_lines) == 4096 // 16


@pytest.mark.parametrize(
    ("method", "path", "headers", "public"),
    [
        ("GET", "/", [], True),
        ("GET", "/console/orders/o-1", [], True),
        ("GET", "/console/static/console.js", [], True),
        ("GET", "/console/pipeline", [(b"hx-request", b"true")], False),  # data: needs the token
        ("POST", "/console/dead-letters/x:0:1/retry", [], False),
        ("GET", "/orders", [], False),
        ("GET", "/docs", [], False),
        ("GET", "/console/unknown", [], False),
    ],
)
def test_only_a_pages_data_free_frame_and_static_files_pass_without_the_token(method, path, headers, public):
    assert public_request({"type": "http", "method": method, "path": path, "headers": headers}) is public


def test_since_is_read_as_utc_and_bad_input_is_one_clear_error():
    assert parse_since("2026-12-06T13:05") == datetime(2026, 12, 6, 13, 5, tzinfo=UTC)
    assert parse_since("2026-12-06T14:05+01:00") == datetime(2026, 12, 6, 13, 5, tzinfo=UTC)
    assert parse_since(" ") is None
    with pytest.raises(QueryError, match="not a time"):
        parse_since("yesterday")


def test_the_shipment_state_comes_from_the_orders_timeline():
    placed = [{"type": "OrderPlaced", "occurred_at": "t1"}]
    assert shipment_state(placed, "PLACED")["state"] == "waiting for confirmation"
    assert shipment_state(placed, "CONFIRMED")["state"] == "ready to ship"
    assert shipment_state(placed, "CANCELLED")["state"] == "none (order closed)"
    shipped = [*placed, {"type": "OrderShipped", "occurred_at": "t2"}]
    assert shipment_state(shipped, "SHIPPED") == {
        "state": "shipped, on its way",
        "shipped_at": "t2",
        "delivered_at": None,
    }
    delivered = [*shipped, {"type": "OrderDelivered", "occurred_at": "t3"}]
    assert shipment_state(delivered, "DELIVERED")["delivered_at"] == "t3"
