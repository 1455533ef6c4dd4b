"""Contract suite of the projection store and its queries: the same tests on SQLite and PostgreSQL (no Kafka)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from orderstream.views import customer_view, order_view, queries, sales_view
from orderstream.views.registry import SPECS, spec_of
from orderstream.views.store import GenerationChanged, ProjectionStore, Record, SchemaMismatch
from orderstream.views.tables import projection_offsets
from tests.support.databases import url_of
from tests.support.histories import interleaved, order_history, public_rows, reference

TOPIC = "x.orders.events"


def records_of(events, partition=0, start=0):
    return [Record(TOPIC, partition, start + n, e) for n, e in enumerate(events)]


def open_stores(template):
    stores = {name: ProjectionStore(url_of(template, name), spec, writer=True) for name, spec in SPECS.items()}
    return stores, {name: store.ensure() for name, store in stores.items()}


def dump_all(stores):
    return public_rows({name: dict(store.dump()) for name, store in stores.items()})


@st.composite
def two_batches(draw):
    histories = [draw(order_history(order_id=f"o{n}")) for n in range(draw(st.integers(1, 5)))]
    log = draw(interleaved(histories))
    cut = draw(st.integers(0, len(log)))
    return histories, log, cut


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=two_batches())
def test_batches_written_through_the_store_equal_the_reference(db_url, case):
    histories, log, cut = case
    stores, generations = open_stores(db_url)
    try:
        for store in stores.values():  # each example starts from empty tables
            with store.engine.begin() as conn:
                for table in store.tables(1).values():
                    conn.execute(table.delete())
                conn.execute(projection_offsets.delete())
        for name, store in stores.items():
            store.apply(records_of(log[:cut]), generations[name])
            # the whole log again: the first `cut` records are below the stored position and must be dropped
            after = store.apply(records_of(log), generations[name])
            assert after == {(TOPIC, 0): len(log)}
            assert store.next_offsets() == {(TOPIC, 0): len(log)}
        assert dump_all(stores) == reference(histories)
    finally:
        for store in stores.values():
            store.dispose()


def test_a_database_built_by_another_schema_version_is_refused(db_url):
    url = url_of(db_url, "order-view")
    spec = spec_of("order-view")
    ProjectionStore(url, spec).ensure()
    newer = type(spec)(**{**{f: getattr(spec, f) for f in spec.__slots__}, "schema_version": spec.schema_version + 1})
    built, now = spec.schema_version, spec.schema_version + 1
    with pytest.raises(
        SchemaMismatch, match=f"was built with schema version {built}, this release projects version {now}"
    ):
        ProjectionStore(url, newer).ensure()


def test_queries_and_the_writer_follow_the_generation_pointer(db_url):
    history = [_placed("o1", "alice", datetime(2024, 5, 1, tzinfo=UTC), [("A", 1, 1)])]
    stores, _ = open_stores(db_url)
    store = stores["order-view"]
    store.apply(records_of(history), 1)
    model = queries.ReadModel(url_of(db_url, "order-view"), "order-view")
    assert order_view.order_detail(model, "o1")["order_id"] == "o1"
    store.create_generation(2)
    store.activate(2, spec_of("order-view").schema_version)
    assert order_view.order_detail(model, "o1") is None  # the new generation is empty until a rebuild fills it
    with pytest.raises(GenerationChanged):
        store.apply(records_of(history, partition=1), 1)
    assert store.next_offsets() == {}
    model.close()
    for s in stores.values():
        s.dispose()


# --- two writers at once: rebalance overlaps, a swap racing the live projector, shared counters ------------------


def _customer_totals(store, generation):
    from sqlalchemy import select

    table = store.tables(generation)["customers"]
    with store.engine.begin() as conn:
        return sorted(
            tuple(r)
            for r in conn.execute(select(table.c.customer_id, table.c.orders_count, table.c.lifetime_value_minor))
        )


def test_two_instances_applying_a_partitions_first_batch_count_it_once(db_url):
    """A rebalance overlap on a partition nothing was applied from yet: instance A is between its writes and its
    commit when B applies the same records. B must wait for A and then drop them (on PostgreSQL there is no offset
    row to lock until A's commits), not add the customer's counters a second time."""
    url = url_of(db_url, "customer-view")
    a, b = (ProjectionStore(url, spec_of("customer-view"), writer=True) for _ in range(2))
    generation = a.ensure()
    b.ensure()
    at = datetime(2024, 5, 1, tzinfo=UTC)
    batch = records_of([_placed("o1", "alice", at, [("A", 1, 100)]), _placed("o2", "alice", at, [("A", 1, 100)])])
    inside, failures = threading.Event(), []

    def slow_commit() -> None:
        inside.set()
        time.sleep(0.5)

    def first() -> None:
        try:
            a.apply(batch, generation, before_commit=slow_commit)
        except Exception as exc:  # noqa: BLE001 - asserted on below
            failures.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10)
    assert b.apply(batch, generation) == {(TOPIC, 0): 2}
    thread.join(30)
    assert not failures, failures
    assert _customer_totals(a, generation) == [("alice", 2, 200)]
    assert a.next_offsets() == {(TOPIC, 0): 2}
    a.dispose()
    b.dispose()


def test_a_batch_racing_a_swap_is_refused_not_committed_into_the_replaced_generation(db_url):
    """The live projector's batch arrives while a replay's swap holds its locks: once the swap commits, the batch
    must fail with GenerationChanged (the projector re-seeks to the new generation), never land in the old one."""
    url = url_of(db_url, "customer-view")
    live, replay = (ProjectionStore(url, spec_of("customer-view"), writer=True) for _ in range(2))
    old = live.ensure()
    at = datetime(2024, 5, 1, tzinfo=UTC)
    first = records_of([_placed("o1", "alice", at, [("A", 1, 100)])])
    live.apply(first, old)
    replay.create_generation(old + 1)
    replay.apply(first, old + 1, shadow=True)
    inside, swapped = threading.Event(), {}

    def slow_commit() -> None:  # the swap holds its locks and has not committed yet
        inside.set()
        time.sleep(0.5)

    thread = threading.Thread(
        target=lambda: swapped.update(behind=replay.swap_in(old + 1, old, {(TOPIC, 0): 1}, before_commit=slow_commit))
    )
    thread.start()
    assert inside.wait(10)
    with pytest.raises(GenerationChanged):
        live.apply(records_of([_placed("o2", "alice", at, [("A", 1, 100)])], start=1), old)
    thread.join(30)
    assert swapped == {"behind": {}}
    assert live.next_offsets(old) == {(TOPIC, 0): 1}  # nothing more went into the replaced generation
    live.dispose()
    replay.dispose()


def test_writers_of_different_partitions_share_counter_rows_without_deadlock(db_url):
    """Two instances (or replay workers) on different partitions add to the same customers' counters, each batch
    touching them in another order; on PostgreSQL that deadlocked unless rows are locked in one order."""
    import random

    url = url_of(db_url, "customer-view")
    stores = [ProjectionStore(url, spec_of("customer-view"), writer=True) for _ in range(2)]
    generation = stores[0].ensure()
    stores[1].ensure()
    at = datetime(2024, 5, 1, tzinfo=UTC)
    failures = []

    def writer(partition: int) -> None:
        rng = random.Random(partition)
        offset = 0
        try:
            for _ in range(8):
                customers = [f"c{n:03d}" for n in range(150)]
                rng.shuffle(customers)
                events = [
                    _placed(f"o{partition}-{offset + n}", c, at, [("A", 1, 100)]) for n, c in enumerate(customers)
                ]
                stores[partition].apply(records_of(events, partition=partition, start=offset), generation)
                offset += len(events)
        except Exception as exc:  # noqa: BLE001 - asserted on below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert _customer_totals(stores[0], generation) == [(f"c{n:03d}", 16, 1600) for n in range(150)]
    for store in stores:
        store.dispose()


def _placed(order_id, customer, at, lines, currency="EUR"):
    from orderstream.domain.events import OrderLine, OrderPlaced

    lines = tuple(OrderLine(sku=s, quantity=q, unit_price_minor=p) for s, q, p in lines)
    return OrderPlaced(
        event_id=f"{order_id}-1", version=1, occurred_at=at, correlation_id=order_id, causation_id="c",
        order_id=order_id, customer_id=customer, currency=currency, lines=lines,
        total_minor=sum(line.amount_minor for line in lines),
    )  # fmt: skip


def _confirmed(order_id, at):
    from orderstream.domain.events import OrderConfirmed

    return OrderConfirmed(
        event_id=f"{order_id}-2",
        version=2,
        occurred_at=at,
        correlation_id=order_id,
        causation_id="c",
        order_id=order_id,
    )


def _shipped(order_id, at):
    from orderstream.domain.events import OrderShipped

    return OrderShipped(
        event_id=f"{order_id}-3",
        version=3,
        occurred_at=at,
        correlation_id=order_id,
        causation_id="c",
        order_id=order_id,
        carrier="DHL",
        tracking_number="T",
    )


def ship_in_sales_view(url_template: str, topic: str = TOPIC) -> None:
    """o1 and o2 shipped (captured), as the sales view alone sees it (offsets 5-6): only captured orders are sales."""
    stores, generations = open_stores(url_template)
    at = datetime(2024, 5, 3, 10, tzinfo=UTC)
    shipped = [Record(topic, 0, 5 + n, e) for n, e in enumerate([_shipped("o1", at), _shipped("o2", at)])]
    stores["sales-view"].apply(shipped, generations["sales-view"])
    for store in stores.values():
        store.dispose()


def fill_shop(url_template: str, topic: str = TOPIC) -> str:
    """Three orders of two customers projected into every view, read from offsets 0-4 of `topic` partition 0;
    returns the URL template."""
    day1, day2 = datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 2, 10, tzinfo=UTC)
    events = [
        _placed("o1", "alice", day1, [("A", 2, 100), ("B", 1, 50)]),
        _placed("o2", "bob", day2, [("A", 1, 100)]),
        _placed("o3", "alice", day2.replace(hour=11), [("B", 3, 50)], currency="USD"),
        _confirmed("o1", day2),
        _confirmed("o2", day2),
    ]
    stores, generations = open_stores(url_template)
    for name, store in stores.items():
        store.apply([Record(topic, 0, n, e) for n, e in enumerate(events)], generations[name])
        store.dispose()
    return url_template


@pytest.fixture
def shop(db_url):
    return fill_shop(db_url)


def test_order_queries_filter_sort_and_limit(shop):
    with queries.ReadModel(url_of(shop, "order-view"), "order-view") as model:
        detail = order_view.order_detail(model, "o1")
        assert detail["lines"] == [
            {"sku": "A", "quantity": 2, "unit_price_minor": 100, "returned_quantity": 0},
            {"sku": "B", "quantity": 1, "unit_price_minor": 50, "returned_quantity": 0},
        ]
        assert [(e["type"], e["version"]) for e in detail["timeline"]] == [("OrderPlaced", 1), ("OrderConfirmed", 2)]
        assert (detail["status"], detail["version"], detail["total_minor"]) == ("CONFIRMED", 2, 250)
        assert [o["order_id"] for o in order_view.list_orders(model)] == ["o3", "o2", "o1"]
        assert [o["order_id"] for o in order_view.list_orders(model, customer_id="alice")] == ["o3", "o1"]
        assert [o["order_id"] for o in order_view.list_orders(model, status="placed")] == ["o3"]
        since = datetime(2024, 5, 2, tzinfo=UTC)
        assert [
            o["order_id"] for o in order_view.list_orders(model, since=since, sort="order_id", descending=False)
        ] == [
            "o2",
            "o3",
        ]
        assert len(order_view.list_orders(model, limit=1)) == 1
        with pytest.raises(queries.QueryError, match="cannot sort by"):
            order_view.list_orders(model, sort="total_minor; DROP TABLE x")
        assert order_view.list_orders(model, customer_id="alice' OR '1'='1") == []


def test_a_point_read_answers_and_refuses_as_the_read_transaction_does(shop):
    """order_detail's point read runs on the DBAPI connection of a SQLite view (ReadModel.point_reading): the same
    answers as through SQLAlchemy (a line's returned quantity, an unknown order), and the same checks of the pointer
    first (another schema version, no pointer row)."""
    from sqlalchemy import update

    from orderstream.views.store import NotInitialized
    from orderstream.views.tables import projection_meta

    with queries.ReadModel(url_of(shop, "order-view"), "order-view") as model:
        store = model.store
        with store.engine.begin() as conn:
            conn.execute(store.tables(1)["returns"].insert().values(order_id="o1", sku="B", returned_quantity=1))
        orders = ("o1", "o2", "o3", "o4")
        direct = [order_view.order_detail(model, order) for order in orders]
        assert model._direct == shop.startswith("sqlite")  # the path under test (PostgreSQL: through SQLAlchemy)
        model._direct = False
        assert direct == [order_view.order_detail(model, order) for order in orders]
        assert direct[0]["lines"][1] == {"sku": "B", "quantity": 1, "unit_price_minor": 50, "returned_quantity": 1}
        assert direct[3] is None
        model._direct = shop.startswith("sqlite")

        built = spec_of("order-view").schema_version
        with store.engine.begin() as conn:
            conn.execute(update(projection_meta).values(schema_version=built + 1))
        with pytest.raises(SchemaMismatch, match=f"was built with schema version {built + 1}"):
            order_view.order_detail(model, "o1")
        with store.engine.begin() as conn:
            conn.execute(projection_meta.delete())
        with pytest.raises(NotInitialized, match="has not started yet"):
            order_view.order_detail(model, "o1")


def test_a_point_read_of_a_view_file_without_tables_says_it_has_not_started(tmp_path):
    """A projector that has created its SQLite file but not yet its tables: NotInitialized, not an SQL error."""
    import sqlite3

    from orderstream.views.store import NotInitialized

    path = tmp_path / "order-view.db"
    sqlite3.connect(path).close()
    with (
        queries.ReadModel(f"sqlite:///{path}", "order-view") as model,
        pytest.raises(NotInitialized, match="has not started yet"),
    ):
        order_view.order_detail(model, "o1")


def test_sales_and_customer_queries(shop):
    with queries.ReadModel(url_of(shop, "sales-view"), "sales-view") as model:
        assert sales_view.sales(model, by="sku") == [], "confirmed orders are authorized, not captured: no revenue yet"
    ship_in_sales_view(shop)
    with queries.ReadModel(url_of(shop, "sales-view"), "sales-view") as model:
        assert sales_view.sales(model, by="sku") == [
            {"sku": "A", "currency": "EUR", "units": 3, "revenue_minor": 300},
            {"sku": "B", "currency": "EUR", "units": 1, "revenue_minor": 50},
        ]
        assert sales_view.sales(model, by="day") == [
            {"day": "2024-05-01", "currency": "EUR", "units": 3, "revenue_minor": 250},
            {"day": "2024-05-02", "currency": "EUR", "units": 1, "revenue_minor": 100},
        ]
        assert sales_view.status_counts(model) == [
            {"status": "PLACED", "orders": 1},
            {"status": "SHIPPED", "orders": 2},
        ]
    with queries.ReadModel(url_of(shop, "customer-view"), "customer-view") as model:
        assert customer_view.customer_summary(model, "alice") == [
            {"customer_id": "alice", "currency": "EUR", "orders_count": 1, "lifetime_value_minor": 250},
            {"customer_id": "alice", "currency": "USD", "orders_count": 1, "lifetime_value_minor": 150},
        ]


def test_cli_queries(settings, db_url, monkeypatch):
    """Against the test's own broker and topic prefix: --after checks a token against the cluster it names, so
    with the default port it would ask whatever broker runs there (a `make demo` one)."""
    from confluent_kafka import Producer

    from orderstream.cli.main import app
    from orderstream.kafka.clients import producer_config
    from orderstream.kafka.topics import ensure_topics
    from orderstream.topology import ORDERS_EVENTS, TOPICS

    ensure_topics(settings, tuple(t for t in TOPICS if t.name == ORDERS_EVENTS))
    topic = settings.topic(ORDERS_EVENTS)
    producer = Producer(producer_config(settings))
    for n in range(10):  # offsets 0-9 of partition 0 exist (the views applied 0-4): token :0:9 can be reached
        producer.produce(topic, key=b"k", value=f"record {n}".encode(), partition=0)
    assert producer.flush(30) == 0
    shop = fill_shop(db_url, topic)
    ship_in_sales_view(shop, topic)
    monkeypatch.setenv("ORDERSTREAM_DATABASE_URL", shop)
    runner = CliRunner()
    base = ["-b", settings.effective_bootstrap, "--data-dir", str(settings.data_dir)]
    base += ["--topic-prefix", settings.topic_prefix]
    result = runner.invoke(app, [*base, "query", "order", "o1", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {
        "order_id",
        "customer_id",
        "status",
        "version",
        "currency",
        "total_minor",
        "lines",
        "timeline",
    } <= body.keys()
    assert body["lines"][0].keys() >= {"sku", "quantity", "unit_price_minor"}
    assert body["timeline"][0].keys() >= {"type", "version", "occurred_at"}
    listed = json.loads(runner.invoke(app, [*base, "query", "orders", "--customer", "alice", "--json"]).stdout)
    assert [o["order_id"] for o in listed] == ["o3", "o1"] and "lines" not in listed[0]
    sales = json.loads(runner.invoke(app, [*base, "query", "sales", "--by", "day", "--json"]).stdout)
    assert sales["rows"][0]["day"] == "2024-05-01"
    for args in (["query", "order", "o1"], ["query", "orders"], ["query", "sales"], ["query", "customer", "alice"]):
        assert runner.invoke(app, [*base, *args]).exit_code == 0
    missing = runner.invoke(app, [*base, "query", "order", "nope"])
    assert missing.exit_code == 1 and "order nope not found" in missing.stderr
    behind = runner.invoke(app, [*base, "query", "order", "o1", "--after", "orders.events:0:9", "--timeout", "0.2"])
    assert behind.exit_code == 1 and "behind by 5 event(s)" in behind.stderr
    ready = runner.invoke(app, [*base, "query", "order", "o1", "--after", "orders.events:0:4", "--json"])
    assert ready.exit_code == 0 and json.loads(ready.stdout)["order_id"] == "o1"
    wrong = runner.invoke(app, [*base, "query", "order", "o1", "--after", "payments.events:0:1"])
    assert wrong.exit_code == 1 and "order-view projects orders.events" in wrong.stderr
    bad = runner.invoke(app, [*base, "query", "orders", "--status", "LOST"])
    assert bad.exit_code == 2 and "unknown status" in bad.stderr  # not one of the listed choices: a usage error
