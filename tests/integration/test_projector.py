"""The projector against a real broker, on SQLite and PostgreSQL: the views equal a reference fold of the log,
aborted transactions never show, read-your-writes through `query order --after`, undecodable records stop the loop."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from orderstream.domain.events import OrderLine, OrderPlaced
from orderstream.kafka.consistency import ConsistencyToken
from orderstream.runtime.projector import Projector, UndecodableRecord, stop_on_undecodable
from orderstream.services.projections import build_projections
from orderstream.topology import ORDERS_EVENTS
from orderstream.views.registry import spec_of
from orderstream.views.store import ProjectionStore
from tests.support.event_log import EventLog, dump_all, kafka_offsets, stored_offsets, wait_applied, write_orders
from tests.support.histories import interleaved, order_history, public_rows, random_history, reference
from tests.support.orders import RunningService


@pytest.fixture
def projected(topics, db_url):
    """Settings for views in db_url, with the three projections running; yields (settings, event log)."""
    settings = topics.model_copy(update={"database_url": db_url, "projection_batch_size": 50})
    log = EventLog(settings)
    running = RunningService(build_projections(settings)).start()
    yield settings, log, running
    running.stop()
    log.close()


@st.composite
def round_of_orders(draw):
    prefix = f"{uuid.uuid4().hex[:6]}-"
    histories = [draw(order_history(prefix=prefix)) for _ in range(draw(st.integers(1, 4)))]
    log = draw(interleaved(histories))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(log) - 1)), max_size=2, unique=True)))
    transactions = [log[a:b] for a, b in pairwise([0, *cuts, len(log)]) if log[a:b]]
    phantom = draw(order_history(prefix=f"aborted-{prefix}"))
    return histories, transactions, phantom


def test_projected_rows_equal_a_reference_fold_of_the_log(projected):
    settings, log, running = projected
    committed = []

    # no shrinking: each example costs broker round trips; a failure still prints its example
    @hsettings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None,
               phases=[Phase.explicit, Phase.generate])  # fmt: skip
    @given(round_of_orders())
    def check(case):
        histories, transactions, phantom = case
        log.write(phantom[:2], abort=True)  # an aborted transaction: read_committed never shows it
        for transaction in transactions:
            log.write(transaction)
        committed.extend(histories)
        wait_applied(settings.database_url, log, timeout_s=30, check=running.check)
        assert public_rows(dump_all(settings.database_url)) == reference(committed)

    check()


def test_read_your_writes_with_query_after_token(projected, tmp_path, monkeypatch):
    settings, _, _ = projected
    from orderstream.cli.main import app

    monkeypatch.setenv("ORDERSTREAM_DATABASE_URL", settings.database_url)
    producer = EventLog(settings, transactional=False)
    runner = CliRunner()
    base = ["--bootstrap-servers", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix,
            "--data-dir", str(tmp_path)]  # fmt: skip
    for n in range(100):
        order_id = f"ryw-{n}-{uuid.uuid4().hex[:6]}"
        line = OrderLine(sku="SKU-1", quantity=1 + n % 3, unit_price_minor=250)
        event = OrderPlaced(
            event_id=str(uuid.uuid4()), version=1, occurred_at=datetime.now(UTC), correlation_id=order_id,
            causation_id=order_id, order_id=order_id, customer_id="ryw", currency="EUR", lines=(line,),
            total_minor=line.amount_minor,
        )  # fmt: skip
        ((partition, offset),) = producer.write([event])
        token = ConsistencyToken(ORDERS_EVENTS, partition, offset)
        result = runner.invoke(
            app, [*base, "query", "order", order_id, "--after", str(token), "--timeout", "20", "--json"]
        )
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert (body["order_id"], body["status"], body["version"], body["total_minor"]) == (
            order_id,
            "PLACED",
            1,
            line.amount_minor,
        )
        assert [entry["type"] for entry in body["timeline"]] == ["OrderPlaced"]
    producer.close()


def test_the_stop_hook_stops_the_projector_before_an_undecodable_record(topics, db_url):
    settings = topics.model_copy(update={"database_url": db_url})
    log = EventLog(settings)
    partition, offset = log.write_raw(b"o-bad", b"\xc3\x01not avro at all")
    projector = Projector(settings, spec_of("order-view"), on_undecodable=stop_on_undecodable)
    running = RunningService(projector).start()
    running.thread.join(30)
    with pytest.raises(
        UndecodableRecord, match=f"{settings.topic(ORDERS_EVENTS)}:{partition}:{offset} cannot be decoded"
    ):
        running.stop()
    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    assert store.next_offsets().get((settings.topic(ORDERS_EVENTS), partition), 0) <= offset  # not moved past it
    assert store.dump()["orders"] == []
    store.dispose()


def _placed(n: int) -> OrderPlaced:
    order_id = f"m-{n}-{uuid.uuid4().hex[:6]}"
    line = OrderLine(sku="SKU-1", quantity=1, unit_price_minor=100)
    return OrderPlaced(
        event_id=str(uuid.uuid4()), version=1, occurred_at=datetime.now(UTC), correlation_id=order_id,
        causation_id=order_id, order_id=order_id, customer_id="m", currency="EUR", lines=(line,), total_minor=100,
    )  # fmt: skip


def _in_kafka(settings) -> dict:
    return kafka_offsets(settings, ("order-view",))["order-view"]


def _in_database(settings) -> dict:
    return stored_offsets(settings.database_url, ("order-view",))["order-view"]


def test_kafka_mirrors_the_positions_once_per_interval_even_when_idle_and_exactly_at_stop(topics, tmp_path):
    """A commit per batch cost the broker more than the batches' fetches; the mirror is at most
    offset_mirror_interval_s behind the database, catches up when the projector goes idle, and is exact at a stop."""
    views = f"sqlite:///{tmp_path}/{{projection}}.db"
    fast = topics.model_copy(update={"database_url": views, "offset_mirror_interval_s": 1.5})
    log = EventLog(fast)
    running = RunningService(Projector(fast, spec_of("order-view"))).start()
    try:
        for n in range(5):
            log.write([_placed(n)])
        wait_applied(fast.database_url, log, names=("order-view",), check=running.check)
        deadline = time.monotonic() + 10  # idle now: the next loop turn past the interval mirrors the last batches
        while _in_kafka(fast) != _in_database(fast):
            assert time.monotonic() < deadline, (_in_kafka(fast), _in_database(fast))
            time.sleep(0.2)
    finally:
        running.stop()

    slow = fast.model_copy(update={"offset_mirror_interval_s": 3600})  # the same group and database, restarted
    running = RunningService(Projector(slow, spec_of("order-view"))).start()
    try:
        seen = [_in_database(slow)]
        for n in range(5, 10):  # five batches: each one applied before the next is written
            log.write([_placed(n)])
            wait_applied(slow.database_url, log, names=("order-view",), check=running.check)
            seen.append(_in_database(slow))
        time.sleep(1)
        # one mirror commit at most since the start (its positions on assignment, or its first batch when that came
        # first); nothing more for an hour but the stop
        assert _in_kafka(slow) in seen[:2]
    finally:
        running.stop()
    assert _in_kafka(slow) == _in_database(slow)
    log.close()


def _order_view_state(url: str, topic: str) -> tuple[dict[int, int], bool]:
    """(next offset per partition of topic, whether the secondary indexes are missing), as committed now."""
    store = ProjectionStore(url, spec_of("order-view"))
    try:
        stored = store.next_offsets()
        return {p: o for (t, p), o in stored.items() if t == topic}, store.lacks_indexes(1)
    finally:
        store.dispose()


def test_a_fresh_view_loads_its_backlog_before_indexing_and_commits_its_end_with_the_indexes(
    topics, db_url, monkeypatch, caplog
):
    """A projector starting on a fresh view over a backlog writes the rows without the secondary indexes and builds
    them in the transaction of the batch that reaches the backlog's end: no committed state holds positions past
    the backlog without them. Seen from inside every batch's transaction (before its COMMIT, the writer waiting), so
    each observation is one committed state between two batches."""
    from orderstream import failpoints

    settings = topics.model_copy(update={"database_url": db_url, "projection_batch_size": 20})
    url, topic = settings.database_url_for("order-view"), settings.topic(ORDERS_EVENTS)
    rng = random.Random(11)
    histories = [random_history(rng, f"x{n}", prefix="x") for n in range(60)]
    log = EventLog(settings)
    write_orders(log, histories, per_transaction=15)
    backlog_end = {p: o + 1 for p, o in log.committed.items()}
    seen: list[tuple[dict[int, int], bool]] = []

    def observe(name: str) -> None:
        if name == "mid_batch":
            seen.append(_order_view_state(url, topic))

    monkeypatch.setattr(failpoints, "point", observe)
    caplog.set_level("INFO", logger="orderstream")
    running = RunningService(Projector(settings, spec_of("order-view"))).start()
    try:
        wait_applied(settings.database_url, log, names=("order-view",), check=running.check)
        deadline = time.monotonic() + 30
        while _order_view_state(url, topic)[1]:  # the last batch's commit and the indexes are one transaction
            assert time.monotonic() < deadline, "the indexes were not built"
            time.sleep(0.05)
    finally:
        running.stop()
        log.close()

    def past_backlog(positions: dict[int, int]) -> bool:
        return all(positions.get(p, 0) >= end for p, end in backlog_end.items())

    assert seen[0] == ({}, True)  # the fresh view: no position, no secondary index
    assert any(state[0] and state[1] for state in seen), "rows were loaded while the indexes were deferred"
    assert all(not lacks for positions, lacks in seen if past_backlog(positions)), seen
    assert _order_view_state(url, topic) == (backlog_end | _order_view_state(url, topic)[0], False)
    assert any("before building the secondary indexes" in r.getMessage() for r in caplog.records)
    assert any("built 4 secondary index(es)" in r.getMessage() for r in caplog.records)
    store = ProjectionStore(url, spec_of("order-view"))
    dumped = store.dump()
    store.dispose()
    for role, rows in reference(histories)["order-view"].items():
        assert sorted(map(tuple, dumped[role])) == rows, role


def test_a_fresh_view_over_a_short_log_is_indexed_at_once(topics, db_url):
    settings = topics.model_copy(update={"database_url": db_url, "projection_batch_size": 20})
    url, topic = settings.database_url_for("order-view"), settings.topic(ORDERS_EVENTS)
    log = EventLog(settings)
    log.write([_placed(n) for n in range(3)])  # under four full batches: nothing worth deferring for
    running = RunningService(Projector(settings, spec_of("order-view"))).start()
    try:
        wait_applied(settings.database_url, log, names=("order-view",), check=running.check)
        assert _order_view_state(url, topic)[1] is False
    finally:
        running.stop()
        log.close()


def test_a_fenced_static_member_rejoins_and_applies_every_event_once(topics, tmp_path, monkeypatch, caplog):
    """In a broker outage a static member's session can time out; when it rejoins, the broker may fence it
    (FENCED_INSTANCE_ID), a fatal consumer error. Here another consumer joins with the projector's group.instance.id,
    which fences it the same way: the projector replaces its consumer and goes on from the database's positions."""
    from confluent_kafka import Consumer

    from orderstream.kafka.clients import consumer_config
    from tests.support.histories import random_history

    monkeypatch.setenv("ORDERSTREAM_INSTANCE_ID", "fence-test")
    settings = topics.model_copy(update={"database_url": f"sqlite:///{tmp_path}/{{projection}}.db"})
    rng = random.Random(7)
    histories = [random_history(rng, f"fence-{n}") for n in range(40)]
    log = EventLog(settings)
    projector = Projector(settings, spec_of("order-view"))
    running = RunningService(projector).start()
    try:
        write_orders(log, histories[:20])
        wait_applied(settings.database_url, log, names=("order-view",), check=running.check)
        usurper = Consumer(
            consumer_config(settings, projector.group_id, **{"group.instance.id": "fence-test.order-view"})
        )
        usurper.subscribe([settings.topic(ORDERS_EVENTS)])
        deadline = time.monotonic() + 60
        while not any("rejoins the group" in r.getMessage() for r in caplog.records):
            usurper.poll(0.2)
            running.check()
            assert time.monotonic() < deadline, "the projector was never fenced"
        usurper.close()
        write_orders(log, histories[20:])
        wait_applied(settings.database_url, log, names=("order-view",), timeout_s=120, check=running.check)
    finally:
        running.stop()
        log.close()
    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    dumped = store.dump()
    store.dispose()
    for role, rows in reference(histories)["order-view"].items():
        assert sorted(map(tuple, dumped[role])) == rows, role  # every event applied exactly once
