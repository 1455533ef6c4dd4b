"""GET /orders paging, CSV export and scale-out, against a real uvicorn server on SQLite and PostgreSQL.

The order view is filled directly through the projection store (the same fold the projector runs), not through the
whole pipeline: 25,000 orders that way take seconds. No broker is asked: queries read only the views.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from orderstream.config import load_settings
from orderstream.domain.events import OrderLine, OrderPlaced
from orderstream.kafka.consistency import ConsistencyToken
from orderstream.topology import ORDERS_EVENTS
from orderstream.views.registry import spec_of
from orderstream.views.store import ProjectionStore, Record
from tests.support.api_server import ApiServer

EXISTING = 25_000  # the walk while orders arrive
FEW = 2_000  # every other test
START = datetime(2026, 1, 1, tzinfo=UTC)


class OrderViewFiller:
    """Appends OrderPlaced events to order-view through ProjectionStore.apply, as partition 0 of orders.events."""

    def __init__(self, url: str, topic: str) -> None:
        self.store = ProjectionStore(url, spec_of("order-view"), writer=True)
        self.generation = self.store.ensure()
        self.topic, self.offset = topic, 0

    def place(self, count: int, first: int, batch: int = 5_000) -> list[str]:
        ids = []
        for start in range(first, first + count, batch):
            records = []
            for n in range(start, min(start + batch, first + count)):
                order_id = f"o-{n:07d}"
                ids.append(order_id)
                event = OrderPlaced(
                    event_id=str(uuid.uuid4()), version=1, occurred_at=START + timedelta(seconds=n),
                    correlation_id=order_id, causation_id=order_id, order_id=order_id, customer_id=f"c-{n % 97}",
                    currency="EUR", lines=(OrderLine(sku="SKU-1", quantity=1, unit_price_minor=100 + n % 13),),
                    total_minor=100 + n % 13,
                )  # fmt: skip
                records.append(Record(self.topic, 0, self.offset, event))
                self.offset += 1
            self.store.apply(records, self.generation)
        return ids

    def close(self) -> None:
        self.store.dispose()


def _filled(count, db_url, tmp_path, kafka_bootstrap):
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"p{uuid.uuid4().hex[:8]}.", data_dir=tmp_path / "data",
        database_url=db_url,
    )  # fmt: skip
    filler = OrderViewFiller(settings.database_url_for("order-view"), settings.topic(ORDERS_EVENTS))
    ids = filler.place(count, 0)
    server = ApiServer(settings, tmp_path / "serve.log")
    try:
        yield settings, filler, ids, server
    finally:
        server.stop()
        filler.close()


@pytest.fixture
def filled(db_url, tmp_path, kafka_bootstrap):
    yield from _filled(EXISTING, db_url, tmp_path, kafka_bootstrap)


@pytest.fixture
def few(db_url, tmp_path, kafka_bootstrap):
    yield from _filled(FEW, db_url, tmp_path, kafka_bootstrap)


def _walk(client: httpx.Client, params: dict) -> tuple[list[dict], int]:
    items, pages = [], 0
    response = client.get("/orders", params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        pages += 1
        if body["next"] is None:
            assert "link" not in response.headers
            return items, pages
        link = response.headers["link"]
        assert link.endswith('>; rel="next"') and body["next"] in link
        response = client.get(link[1 : link.index(">")])


def test_paging_by_cursor_while_orders_arrive_yields_every_existing_order_once_and_csv_has_the_same_rows(filled):
    _, filler, ids, server = filled
    stop = threading.Event()

    def arrive():  # orders keep being placed (newer ones) while the client walks
        n = EXISTING
        while not stop.is_set():
            filler.place(200, n, batch=200)
            n += 200

    writer = threading.Thread(target=arrive)
    writer.start()
    try:
        with server.client() as client:
            items, pages = _walk(client, {"limit": 1_000})
            csv_text = client.get("/orders", headers={"Accept": "text/csv"}).text
    finally:
        stop.set()
        writer.join()

    seen = [item["order_id"] for item in items]
    assert len(seen) == len(set(seen)), "an order was handed out twice"
    assert set(ids) <= set(seen), f"{len(set(ids) - set(seen))} existing orders were never handed out"
    assert pages >= EXISTING // 1_000
    placed = [item["placed_at"] for item in items]
    assert placed == sorted(placed, reverse=True), "newest first, across pages"

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    by_id = {row["order_id"]: row for row in rows}
    assert len(by_id) == len(rows), "the CSV has an order twice"
    json_rows = {item["order_id"]: item for item in items}
    for order_id in ids:
        row, item = by_id[order_id], json_rows[order_id]
        assert row == {k: "" if v is None else str(v) for k, v in item.items()}


def test_filters_sorts_and_a_cursor_for_another_selection(few):
    _, _, ids, server = few
    with server.client() as client:
        items, _ = _walk(client, {"customer": "c-5", "sort": "order_id", "asc": "true", "limit": 37})
        expected = sorted(i for n, i in enumerate(ids) if n % 97 == 5)
        assert [item["order_id"] for item in items] == expected
        by_total, _ = _walk(client, {"sort": "total_minor", "limit": 999, "since": "2026-01-01T00:16:40Z"})
        keys = [(-item["total_minor"], item["order_id"]) for item in by_total]
        assert keys == sorted(keys) and len(by_total) == FEW - 1_000
        first = client.get("/orders", params={"limit": 10}).json()
        other = client.get("/orders", params={"limit": 10, "cursor": first["next"], "sort": "order_id"})
        assert other.status_code == 400 and other.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_servers_on_one_postgresql_database_answer_the_same(few, tmp_path):
    settings, filler, ids, first = few
    second = ApiServer(settings, tmp_path / "serve-2.log")
    try:
        with first.client() as a, second.client() as b:
            page_a = a.get("/orders", params={"limit": 100}).json()
            assert page_a == b.get("/orders", params={"limit": 100}).json()
            # a cursor from one server goes on at the other: the API keeps no state
            assert (
                a.get("/orders", params={"cursor": page_a["next"]}).json()
                == b.get("/orders", params={"cursor": page_a["next"]}).json()
            )
            detail_a, detail_b = a.get(f"/orders/{ids[7]}"), b.get(f"/orders/{ids[7]}")
            assert detail_a.status_code == 200 and detail_a.json() == detail_b.json()
            assert detail_a.headers["etag"] == detail_b.headers["etag"] == '"1"'
            # a read-your-writes token the view has applied is honoured by both
            token = str(ConsistencyToken(ORDERS_EVENTS, 0, filler.offset - 1))
            for client in (a, b):
                answer = client.get(f"/orders/{ids[-1]}", params={"after": token, "timeout": 5})
                assert answer.status_code == 200, answer.text
                assert client.get(f"/orders/{ids[-1]}", headers={"If-None-Match": '"1"'}).status_code == 304
    finally:
        second.stop()


def test_the_cli_pages_by_cursor_walks_everything_with_all_and_prints_csv(few):
    from typer.testing import CliRunner

    from orderstream.cli.main import app

    settings, _, ids, _ = few
    runner = CliRunner()
    root = ["-b", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix, "--data-dir",
            str(settings.data_dir)]  # fmt: skip
    env = {"ORDERSTREAM_DATABASE_URL": settings.database_url}
    first = runner.invoke(app, [*root, "query", "orders", "--limit", "1500", "--json"], env=env)
    assert first.exit_code == 0, first.stderr
    cursor = first.stderr.strip().removeprefix("next cursor: ")
    rest = runner.invoke(app, [*root, "query", "orders", "--cursor", cursor, "--limit", "1500", "--json"], env=env)
    assert rest.exit_code == 0 and rest.stderr == "", rest.stderr
    walked = [o["order_id"] for o in json.loads(first.stdout) + json.loads(rest.stdout)]
    assert sorted(walked) == sorted(ids) and len(walked) == len(ids)
    everything = runner.invoke(app, [*root, "query", "orders", "--all", "--csv"], env=env)
    assert everything.exit_code == 0, everything.stderr
    assert sorted(row["order_id"] for row in csv.DictReader(io.StringIO(everything.stdout))) == sorted(ids)
    bad = runner.invoke(app, [*root, "query", "orders", "--cursor", "nonsense"], env=env)
    assert bad.exit_code == 1 and "cursor" in bad.stderr and bad.stdout == ""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_view_behind_a_token_is_503_with_how_far_behind_and_as_of_answers_the_past(few, tmp_path):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    from orderstream.kafka.topics import ensure_topics

    settings, _, ids, server = few
    ensure_topics(settings)
    try:
        producer = Producer({"bootstrap.servers": settings.effective_bootstrap})
        for n in range(4):  # events on partition 1, which no projector applies here
            producer.produce(settings.topic(ORDERS_EVENTS), key=b"k", value=b"x%d" % n, partition=1)
        producer.flush(10)
        with server.client() as client:
            late = client.get(f"/orders/{ids[0]}", params={"after": f"{ORDERS_EVENTS}:1:3", "timeout": 0.5})
            assert late.status_code == 503 and late.headers["retry-after"], late.text
            assert late.headers["content-type"] == "application/problem+json" and late.json()["behind"] == 4
            placed_at = datetime.fromisoformat(client.get(f"/orders/{ids[9]}").json()["placed_at"])
            before = (placed_at - timedelta(seconds=1)).isoformat()
            assert client.get(f"/orders/{ids[9]}", params={"as_of": before}).status_code == 404
            then = client.get(f"/orders/{ids[9]}", params={"as_of": placed_at.isoformat()})
            assert then.status_code == 200 and then.json()["as_of"] and then.json()["version"] == 1
    finally:
        admin = AdminClient({"bootstrap.servers": settings.effective_bootstrap})
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
        for future in admin.delete_topics(names, request_timeout=30).values():
            future.result()


def test_a_database_that_does_not_answer_is_503_with_retry_after(tmp_path, kafka_bootstrap):
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap, data_dir=tmp_path / "data", topic_prefix="nodb.",
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/{projection}",
    )  # fmt: skip
    server = ApiServer(settings, tmp_path / "serve.log")
    try:
        with server.client() as client:
            for path in ("/orders/o-1", "/orders", "/stock", "/sales", "/customers/c-1"):
                answer = client.get(path)
                assert answer.status_code == 503 and answer.headers["retry-after"], (path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert "nobody" not in answer.text and "Traceback" not in answer.text
    finally:
        server.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_broker_that_does_not_answer_is_503_with_retry_after_and_queries_still_answer(few, tmp_path):
    settings, _, ids, _ = few
    offline = settings.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})
    server = ApiServer(offline, tmp_path / "serve-offline.log")
    try:
        with server.client() as client:
            body = {
                "customer_id": "c-1",
                "currency": "EUR",
                "lines": [{"sku": "S", "quantity": 1, "unit_price_minor": 1}],
            }
            for method, path, kwargs in (
                ("post", "/orders", {"json": body}),
                ("post", "/stock/S/restock", {"json": {"quantity": 1}}),
                ("get", f"/orders/{ids[0]}/events", {}),
                ("get", "/readyz", {}),
            ):
                answer = getattr(client, method)(path, **kwargs)
                assert answer.status_code == 503 and answer.headers["retry-after"], (path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert "127.0.0.1:1" in answer.json()["detail"], answer.text
            assert client.get(f"/orders/{ids[0]}").status_code == 200  # the views need no broker
    finally:
        server.stop()
