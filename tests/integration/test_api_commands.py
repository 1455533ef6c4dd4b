"""The HTTP API against the whole pipeline: `orderstream run all` (every service and projector, and the API as one
more child on api_port) as real processes on the real broker (SQLite views), httpx as the client; `orderstream
serve` on its own for the token test.

One pipeline and one server for the module (starting them costs more than every scenario together); each scenario
uses its own customers, SKUs and orders.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from orderstream.config import Settings, load_settings
from orderstream.topology import INVENTORY_COMMANDS, ORDERS_COMMANDS, SHIPPING_COMMANDS
from tests.support.api_server import ApiServer

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, ApiServer]]:
    from orderstream.kafka.topics import ensure_topics

    base = tmp_path_factory.mktemp("api")
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"api{uuid.uuid4().hex[:8]}.", data_dir=base / "data",
        partitions=3,
    )  # fmt: skip
    ensure_topics(settings)
    pipeline = ApiServer(settings, base / "run-all.log", pipeline=True)  # run all: the services and the API
    try:
        yield settings, pipeline
        assert pipeline.alive(), pipeline.output()[-3000:]
    finally:
        assert pipeline.stop() == 0, pipeline.output()[-3000:]


@pytest.fixture
def client(api) -> Iterator[httpx.Client]:
    with api[1].client() as c:
        yield c


def order_body(customer: str, *lines: tuple[str, int, int], **extra) -> dict:
    return {
        "customer_id": customer,
        "currency": "EUR",
        "lines": [{"sku": s, "quantity": q, "unit_price_minor": p} for s, q, p in lines],
    } | extra


def restock(client: httpx.Client, sku: str, quantity: int) -> None:
    answer = client.post(f"/stock/{sku}/restock", json={"quantity": quantity})
    assert answer.status_code == 200 and answer.json()["accepted"] is True, answer.text


def confirmed(client: httpx.Client, order_id: str) -> dict:
    """Wait until the order is CONFIRMED in the view (payment and stock answered): its version stops moving."""
    for _ in range(300):
        answer = client.get(f"/orders/{order_id}")
        if answer.status_code == 200 and answer.json()["status"] == "CONFIRMED":
            return answer.json()
        assert answer.status_code in (200, 404), answer.text
        threading.Event().wait(0.2)
    raise AssertionError(f"order {order_id} never confirmed: {answer.text}")


def test_post_then_get_after_its_token_shows_the_order_every_time(client):
    for n in range(100):
        placed = client.post("/orders", json=order_body("c-ryw", ("RYW-1", 1, 100 + n)))
        assert placed.status_code == 201, placed.text
        body = placed.json()
        assert body["accepted"] is True and body["version"] == 1 and body["token"], body
        assert placed.headers["location"] == f"/orders/{body['order_id']}"
        read = client.get(f"/orders/{body['order_id']}", params={"after": body["token"], "timeout": 30})
        assert read.status_code == 200, read.text
        assert read.json()["order_id"] == body["order_id"] and read.json()["total_minor"] == 100 + n
    # the header form of the token, and a 304 when nothing changed since the ETag. The running pipeline may still move
    # the order on (reserved, paid, confirmed) between two reads: then the answer is a 200 with a newer version, and
    # a conditional read with that ETag is a 304 once the order has settled.
    again = client.get(f"/orders/{body['order_id']}", headers={"Consistency-Token": body["token"]})
    assert again.status_code == 200
    etag, deadline = again.headers["etag"], time.monotonic() + 30
    while (unchanged := client.get(f"/orders/{body['order_id']}", headers={"If-None-Match": etag})).status_code != 304:
        assert unchanged.status_code == 200 and int(unchanged.json()["version"]) > int(etag.strip('"')), unchanged.text
        assert unchanged.headers["etag"] == f'"{unchanged.json()["version"]}"'
        assert time.monotonic() < deadline, "the order never settled"
        etag = unchanged.headers["etag"]
        time.sleep(0.2)
    assert unchanged.headers["etag"] == etag
    (customer,) = client.get("/customers/c-ryw").json()
    assert customer["orders_count"] >= 1 and customer["currency"] == "EUR"


def test_restock_then_read_the_sku_after_its_token(client):
    restocked = client.post("/stock/RS-1/restock", json={"quantity": 7})
    assert restocked.status_code == 200, restocked.text
    body = restocked.json()
    assert body["sku"] == "RS-1" and body["quantity"] == 7 and body["accepted"] is True
    level = client.get("/stock/RS-1", params={"after": body["token"], "timeout": 30})
    assert level.status_code == 200 and level.json() == {"sku": "RS-1", "on_hand": 7, "reserved": 0, "available": 7}
    assert any(row["sku"] == "RS-1" for row in client.get("/stock").json())
    assert client.get("/stock/RS-404").status_code == 404


def test_a_retried_post_with_the_same_idempotency_key_makes_one_order_and_gets_the_same_body(client):
    key = str(uuid.uuid4())
    customer = f"c-idem-{uuid.uuid4().hex[:6]}"
    first = client.post("/orders", json=order_body(customer, ("IDEM-1", 2, 500)), headers={"Idempotency-Key": key})
    second = client.post("/orders", json=order_body(customer, ("IDEM-1", 2, 500)), headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json() == second.json() and first.json()["command_id"] == key
    client.get(f"/orders/{first.json()['order_id']}", params={"after": first.json()["token"]})
    listed = client.get("/orders", params={"customer": customer}).json()
    assert [item["order_id"] for item in listed["items"]] == [first.json()["order_id"]]


def test_two_concurrent_cancels_with_the_same_if_match_one_wins_one_gets_412(client):
    restock(client, "CC-1", 10)
    placed = client.post("/orders", json=order_body("c-cc", ("CC-1", 1, 700))).json()
    order = confirmed(client, placed["order_id"])
    version = f'"{order["version"]}"'
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def cancel():
        with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
            barrier.wait()
            answers.append(own.post(f"/orders/{placed['order_id']}/cancel", json={"reason": "race"},
                                    headers={"If-Match": version}))  # fmt: skip

    threads = [threading.Thread(target=cancel) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
    lost = next(a for a in answers if a.status_code == 412)
    assert lost.headers["content-type"] == PROBLEM and "version conflict" in lost.json()["detail"]
    assert lost.json()["accepted"] is False


def test_wait_false_answers_202_with_the_command_id_and_unknown_orders_are_404(client):
    queued = client.post("/orders", params={"wait": "false"}, json=order_body("c-202", ("Q-1", 1, 100)))
    assert queued.status_code == 202 and set(queued.json()) == {"order_id", "command_id"}, queued.text
    missing = client.get("/orders/o-does-not-exist")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert set(missing.json()) >= {"type", "title", "status", "detail"} and missing.json()["status"] == 404
    gone = client.post("/orders/o-does-not-exist/cancel")
    assert gone.status_code == 404, gone.text


def _events(response: httpx.Response, count: int) -> list[dict]:
    """Read `count` SSE messages (id, event, data) from a streaming response."""
    messages, current = [], {}
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if current:
                messages.append(current)
                current = {}
                if len(messages) == count:
                    return messages
            continue
        name, _, value = line.partition(": ")
        current[name] = value
    return messages


def test_an_sse_client_cut_off_and_reconnected_with_last_event_id_gets_every_event_once_in_order(client):
    skus = [f"SSE-{n}" for n in range(4)]
    for sku in skus:
        restock(client, sku, 5)
    placed = client.post("/orders", json=order_body("c-sse", *((s, 1, 100) for s in skus))).json()
    order_id = placed["order_id"]
    confirmed(client, order_id)
    received: list[dict] = []
    with client.stream("GET", f"/orders/{order_id}/events") as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        received += _events(stream, 3)  # cut off mid-history
    # while it is away the order moves on
    for _ in range(200):
        if client.post(f"/orders/{order_id}/ship", json={"carrier": "DHL"}).status_code == 200:
            break
        threading.Event().wait(0.2)  # the shipping service opens the shipment after it sees the confirmation
    delivered = client.post(f"/orders/{order_id}/deliver")
    assert delivered.status_code == 200, delivered.text
    final = None
    for _ in range(300):
        final = client.get(f"/orders/{order_id}").json()
        if final["status"] == "DELIVERED":
            break
        threading.Event().wait(0.2)
    total = final["version"]
    with client.stream("GET", f"/orders/{order_id}/events", headers={"Last-Event-ID": received[-1]["id"]}) as stream:
        received += _events(stream, total - len(received))
    versions = [json.loads(m["data"])["version"] for m in received]
    assert versions == list(range(1, total + 1)), versions
    assert [m["event"] for m in received] == [t["type"] for t in final["timeline"]]
    assert len({m["id"] for m in received}) == total
    # live: a stream open at the end gets nothing more, and a new subscriber from scratch gets the whole history
    with client.stream("GET", f"/orders/{order_id}/events") as stream:
        assert [json.loads(m["data"])["version"] for m in _events(stream, total)] == versions


def _produced(settings: Settings) -> int:
    from confluent_kafka import Consumer

    from orderstream.kafka.clients import consumer_config
    from orderstream.kafka.offsets import watermarks

    consumer = Consumer(consumer_config(settings, f"t-{uuid.uuid4().hex}"))
    try:
        total = 0
        for name in (ORDERS_COMMANDS, INVENTORY_COMMANDS, SHIPPING_COMMANDS):
            topic = settings.topic(name)
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                total += watermarks(consumer, topic, p, 10)[1]
        return total
    finally:
        consumer.close()


INJECTION = "x'; DROP TABLE order_view_orders_g1; --"
HOSTILE = [
    ("post", "/orders", {"json": {"customer_id": 5, "currency": "EUR", "lines": []}}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", "2", 100))}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", -2, 100))}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", 10**30, 100))}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", 1, 10**15))}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", 1, 1.5))}),
    ("post", "/orders", {"json": order_body("x" * 10_000, ("H-1", 1, 100))}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", 1, 100), order_id="o" * 10_000)}),
    ("post", "/orders", {"json": order_body(INJECTION, ("H-1", 1, 100))}),
    ("post", "/orders", {"json": order_body("c-h", (INJECTION, 1, 100))}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", 1, 100), admin=True)}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", 1, 100), currency="XXXX")}),
    ("post", "/orders", {"json": order_body("c-h")}),
    ("post", "/orders", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("post", "/orders", {"json": order_body("c-h", *((f"S-{n}", 1, 1) for n in range(5_000)))}),
    ("post", "/orders", {"json": order_body("c-h", ("H-1", 1, 100)), "headers": {"Idempotency-Key": "k" * 500}}),
    ("post", f"/orders/{'o' * 10_000}/cancel", {}),
    ("post", "/orders/o-1/cancel", {"json": {"reason": "r", "force": True}}),
    ("post", "/orders/o-1/cancel", {"headers": {"If-Match": "abc"}}),
    ("post", "/orders/o-1/cancel", {"headers": {"If-Match": '"99999999999999999999999"'}}),
    ("post", "/orders/o-1/cancel", {"json": {"reason": "r" * 5_000}}),
    ("post", "/orders/o-1/ship", {"json": {"carrier": INJECTION}}),
    ("post", "/stock/H-1/restock", {"json": {"quantity": -5}}),
    ("post", "/stock/H-1/restock", {"json": {"quantity": 10**20}}),
    ("post", "/stock/H-1/restock", {"json": {"quantity": "5"}}),
    ("post", f"/stock/{INJECTION}/restock", {"json": {"quantity": 5}}),
    ("get", "/orders", {"params": {"cursor": "not-a-cursor"}}),
    ("get", "/orders", {"params": {"cursor": "WzEsbnVsbCxudWxsLG51bGwsImV2aWwiLHRydWUsMSwiYSJd"}}),
    ("get", "/orders", {"params": {"sort": "customer_id; DROP TABLE x"}}),
    ("get", "/orders", {"params": {"status": "NOPE"}}),
    ("get", "/orders", {"params": {"limit": 0}}),
    ("get", "/orders", {"params": {"limit": 10**12}}),
    ("get", "/orders", {"params": {"since": "yesterday"}}),
    ("get", "/orders/o-1", {"params": {"after": "nonsense"}}),
    ("get", "/orders/o-1", {"params": {"after": "payments.events:0:1"}}),
    ("get", "/orders/o-1", {"params": {"after": "orders.events:999:5"}}),
    ("get", "/orders/o-1", {"params": {"after": "orders.events:0:99999999999", "timeout": 1}}),
    ("get", "/orders/o-1", {"params": {"timeout": -1, "after": "orders.events:0:0"}}),
    ("get", "/orders/o-1", {"params": {"as_of": "not a time"}}),
    ("get", f"/orders/{INJECTION}", {}),
    ("get", "/orders/o-1/events", {"headers": {"Last-Event-ID": "garbage"}}),
    ("get", "/sales", {"params": {"by": "month"}}),
]


def test_hostile_input_gets_a_4xx_problem_and_nothing_is_produced(api, client):
    settings, _ = api
    before = _produced(settings)
    for method, path, kwargs in HOSTILE:
        answer = getattr(client, method)(path, **kwargs)
        where = (method, path[:60], str(kwargs)[:120], answer.status_code, answer.text[:300])
        assert 400 <= answer.status_code < 500, where
        assert answer.headers["content-type"] == PROBLEM, where
        body = answer.json()
        assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == answer.status_code, where
        assert "Traceback" not in answer.text and len(answer.text) < 5_000, where
    oversized = client.post("/orders", content=b'{"customer_id": "' + b"x" * 200_000 + b'"}',
                            headers={"content-type": "application/json"})  # fmt: skip
    assert oversized.status_code == 413 and oversized.headers["content-type"] == PROBLEM, oversized.text
    assert _produced(settings) == before, "hostile input produced a command"


def test_without_the_token_or_with_a_wrong_one_every_request_is_401_and_the_token_is_never_shown(api, tmp_path):
    settings, _ = api
    secret = f"s3cret-{uuid.uuid4().hex}"
    server = ApiServer(settings, tmp_path / "serve-token.log", token=secret)
    try:
        seen = []
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": secret}, {"Authorization": "Basic x"}):
            for path in ("/healthz", "/orders", "/docs", "/openapi.json", "/nowhere"):
                answer = httpx.get(server.url + path, headers=headers, timeout=10)
                assert answer.status_code == 401, (path, headers, answer.status_code)
                assert answer.headers["content-type"] == PROBLEM and answer.headers["www-authenticate"] == "Bearer"
                seen.append(answer.text + str(answer.headers))
        with server.client() as authorized:
            assert authorized.get("/healthz").status_code == 200
            assert authorized.get("/openapi.json").status_code == 200
            seen.append(authorized.get("/orders/o-x").text)
    finally:
        server.stop()
    assert all(secret not in text for text in seen)
    assert secret not in server.output()


def test_ops_endpoints_answer_as_the_cli_does(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = None
    for _ in range(150):
        ready = client.get("/readyz")
        if ready.status_code == 200:
            break
        assert ready.status_code == 503 and ready.headers["retry-after"], ready.text
        threading.Event().wait(0.2)
    assert ready.status_code == 200 and set(ready.json()["views"]) == {
        "order-view", "customer-view", "sales-view", "stock-view", "payment-view"
    }, ready.text  # fmt: skip
    status = client.get("/status", params={"sample": 0.1})
    assert status.status_code == 200, status.text
    rows = status.json()["consumers"]
    assert rows and {"name", "partition", "lag", "last_event_age_s", "running"} <= set(rows[0])
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/orders", "/orders/{order_id}", "/orders/{order_id}/events", "/stock/{sku}/restock", "/sales"} <= set(
        paths
    )
    assert client.get("/docs").status_code == 200
    assert client.get("/sales", params={"by": "day-sku"}).status_code == 200


def test_a_delivered_order_is_returned_over_http_by_line_and_a_second_return_beyond_it_is_refused(client):
    restock(client, "RET-1", 5)
    restock(client, "RET-2", 5)
    placed = client.post("/orders", json=order_body("c-return", ("RET-1", 2, 700), ("RET-2", 1, 300))).json()
    order_id = placed["order_id"]
    confirmed(client, order_id)
    for _ in range(200):
        if client.post(f"/orders/{order_id}/ship").status_code == 200:
            break
        threading.Event().wait(0.2)  # the shipping service opens the shipment after it sees the confirmation
    assert client.post(f"/orders/{order_id}/deliver").status_code == 200
    bad = client.post(f"/orders/{order_id}/return", json={"items": [{"sku": "RET-1", "quantity": 0}]})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM, bad.text
    body = {"items": [{"sku": "RET-1", "quantity": 1}], "reason": "too big", "restock": False}
    returned = client.post(f"/orders/{order_id}/return", json=body, headers={"Idempotency-Key": f"ret-{order_id}"})
    assert returned.status_code == 200, returned.text
    answer = returned.json()
    assert answer["accepted"] is True and answer["items"] == [{"sku": "RET-1", "quantity": 1}], answer
    assert answer["restock"] is False and answer["token"]
    again = client.post(f"/orders/{order_id}/return", json=body, headers={"Idempotency-Key": f"ret-{order_id}"})
    assert again.status_code == 200 and again.json() == answer  # the same command: the same answer, once
    view = client.get(f"/orders/{order_id}", params={"after": answer["token"]}).json()
    assert {line["sku"]: line["returned_quantity"] for line in view["lines"]} == {"RET-1": 1, "RET-2": 0}
    beyond = client.post(f"/orders/{order_id}/return", json={"items": [{"sku": "RET-1", "quantity": 2}]})
    assert beyond.status_code == 409 and beyond.json()["accepted"] is False, beyond.text
