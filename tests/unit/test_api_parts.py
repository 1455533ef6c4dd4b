"""The HTTP API's pure parts: cursors, If-Match, the bind rule, tokens and the shared answer models."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from orderstream.api.problems import Problem
from orderstream.api.routers.orders import _expected_version
from orderstream.api.serving import UnsafeBind, check_bind
from orderstream.config import load_settings
from orderstream.ops.read_your_writes import PositionWatch, TokenRefused, parse_token
from orderstream.views.models import OrderSummary, SalesReport, dump, orders_csv
from orderstream.views.order_view import InvalidCursor, OrderCursor, OrderSelection
from orderstream.views.queries import QueryError


def test_a_cursor_round_trips_and_anything_else_is_refused():
    cursor = OrderCursor(OrderSelection("c-1", "PLACED", None, "total_minor", False), 1200, "o-9")
    assert OrderCursor.decode(cursor.encode()) == cursor
    forged = [
        "",
        "!!!",
        "x" * 5_000,
        base64.urlsafe_b64encode(b"[1,2,3]").decode(),
        base64.urlsafe_b64encode(json.dumps([1, None, None, None, "evil", True, "a", "o"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1, None, None, None, "total_minor", True, "a", "o"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([2, None, None, None, "placed_at", True, "a", "o"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1, 5, None, None, "placed_at", True, "a", "o"]).encode()).decode(),
    ]
    for text in forged:
        with pytest.raises(InvalidCursor):
            OrderCursor.decode(text)
    with pytest.raises(QueryError):
        OrderSelection(sort="total_minor; DROP TABLE x")


def test_if_match_is_a_quoted_version_or_star():
    assert _expected_version(None) is None and _expected_version("*") is None
    assert _expected_version('"3"') == 3 and _expected_version('W/"0"') == 0
    for bad in ("3", '"-1"', '"abc"', '"99999999999999999999"', '"٣"', '""'):
        with pytest.raises(Problem) as caught:
            _expected_version(bad)
        assert caught.value.status == 400


def test_serve_refuses_a_non_loopback_address_without_a_token():
    plain, tokened = load_settings(), load_settings(api_token="t0ken")
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(host, plain)
    for host in ("0.0.0.0", "192.168.1.4", "::", "example.com"):
        with pytest.raises(UnsafeBind) as caught:
            check_bind(host, plain)
        check_bind(host, tokened)
        assert "t0ken" not in str(caught.value)
    assert "t0ken" not in repr(tokened) and "t0ken" not in str(tokened.model_dump())


def test_read_your_writes_tokens_are_checked_against_the_view():
    assert parse_token("order-view", "orders.events:2:17").offset == 17
    for text, projection in (("garbage", "order-view"), ("inventory.events:0:1", "order-view"), ("", "stock-view")):
        with pytest.raises(TokenRefused):
            parse_token(projection, text)


def test_a_position_watch_serves_every_wait_with_one_read_that_started_after_it_asked():
    async def scenario() -> None:
        reads: list[int] = []
        gate = asyncio.Event()

        async def read() -> dict[tuple[str, int], int]:
            reads.append(len(reads))
            if len(reads) == 1:
                await gate.wait()  # the first read is under way while more waits arrive
            return {("t", 0): len(reads)}

        watch = PositionWatch(read, interval_s=0.001)
        first = asyncio.create_task(watch.next_read())
        while not reads:
            await asyncio.sleep(0)
        late = [asyncio.create_task(watch.next_read()) for _ in range(50)]
        for _ in range(3):
            await asyncio.sleep(0)  # each late wait has asked
        assert reads == [0]
        gate.set()
        assert await first == {("t", 0): 1}
        # the 50 waits that came while the first read ran get the next one, all the same one
        assert [await x for x in late] == [{("t", 0): 2}] * 50
        assert len(reads) == 2
        await asyncio.sleep(0.01)
        assert len(reads) == 2  # nobody waits: no reads

        async def failing() -> None:
            raise RuntimeError("database down")

        broken = PositionWatch(failing, interval_s=0.001)
        with pytest.raises(RuntimeError, match="database down"):
            await broken.next_read()
        watch.close()
        broken.close()

    asyncio.run(scenario())


def test_answer_models_keep_the_cli_fields_and_refuse_unknown_ones():
    row = {
        "order_id": "o-1", "customer_id": "c", "status": "PLACED", "version": 1, "currency": "EUR",
        "total_minor": 5, "payment_status": None, "placed_at": "t", "updated_at": "t",
    }  # fmt: skip
    assert dump(OrderSummary.model_validate(row)) == row
    with pytest.raises(ValueError):
        OrderSummary.model_validate(row | {"secret": 1})
    report = {"by": "sku", "rows": [{"sku": "A", "currency": "EUR", "units": 1, "revenue_minor": 5}], "statuses": []}
    assert dump(SalesReport.model_validate(report)) == report
    assert "".join(orders_csv([row])).splitlines() == [",".join(row), "o-1,c,PLACED,1,EUR,5,,t,t"]


def test_the_serve_command_refuses_a_public_address_without_a_token(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from orderstream.cli.main import app

    monkeypatch.delenv("ORDERSTREAM_API_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: refusing to listen on 0.0.0.0 without an API token")
    assert len(result.stderr.strip().splitlines()) == 1
