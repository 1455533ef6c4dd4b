"""`replay projection` against a real broker, on SQLite and PostgreSQL: a replay of each projection swaps in a copy
whose checksums equal the live one's while a query loop keeps answering whole; the live projector continues from the
new generation; a replay chases a log that keeps growing; a schema version change is rebuilt next to the old copy;
a replay writes nothing to Kafka."""

from __future__ import annotations

import random
import threading
import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from orderstream.kafka.clients import admin_config, consumer_config
from orderstream.runtime.replay import ProjectionReplay, ReplayError
from orderstream.runtime.replay_workers import projection_replay
from orderstream.services.projections import build_projections
from orderstream.views import customer_view, order_view, queries, sales_view
from orderstream.views.registry import SPECS, spec_of
from orderstream.views.store import ProjectionStore, SchemaMismatch
from orderstream.views.tables import projection_meta
from tests.support.databases import url_of
from tests.support.event_log import EventLog, dump_all, order_events_topic, wait_applied, write_orders
from tests.support.histories import public_rows, random_history, reference, without_zero_counters
from tests.support.orders import RunningService

ORDERS = 1500


def topic_ends(settings) -> dict[tuple[str, int], int]:
    """The end offset of every partition of every topic of this test (its prefix)."""
    from confluent_kafka import Consumer

    admin = AdminClient(admin_config(settings))
    consumer = Consumer(consumer_config(settings, "ends-probe"))
    try:
        out = {}
        for name, meta in admin.list_topics(timeout=10).topics.items():
            if name.startswith(settings.topic_prefix):
                for p in meta.partitions:
                    out[(name, p)] = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
        return out
    finally:
        consumer.close()


class QueryLoop:
    """Asks one projection the same questions over and over in a thread; each answer must equal `expected()`'s."""

    def __init__(self, url: str, name: str, ask, expected) -> None:
        self.model = queries.ReadModel(url, name)
        self.ask, self.expected = ask, expected
        self.stop, self.count, self.failures = threading.Event(), 0, []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                answer = self.ask(self.model)
                if not self.expected(answer):
                    self.failures.append(f"unexpected answer: {str(answer)[:300]}")
            except Exception as exc:  # noqa: BLE001 - collected and asserted on by the test
                self.failures.append(repr(exc))
            self.count += 1

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.model.close()
        assert not self.failures, self.failures[:5]
        assert self.count > 3, "the query loop hardly ran"


def questions(name: str, histories):
    """A question about the whole view and a predicate true exactly of the complete view."""
    if name == "order-view":
        return (lambda m: len(order_view.list_orders(m, limit=10_000)), lambda n: n == len(histories))
    if name == "customer-view":
        customers = sorted({h[0].customer_id for h in histories})
        expected = sum(len(h) > 0 for h in histories)
        return (
            lambda m: sum(r["orders_count"] for c in customers for r in customer_view.customer_summary(m, c)),
            lambda n: n == expected,
        )
    expected = len(histories)
    return (lambda m: sum(r["orders"] for r in sales_view.status_counts(m)), lambda n: n == expected)


@pytest.fixture
def live(settings, db_url):
    settings = order_events_topic(settings).model_copy(update={"database_url": db_url, "projection_batch_size": 200})
    log = EventLog(settings)
    running = RunningService(build_projections(settings, tuple(SPECS))).start()
    yield settings, log, running
    running.stop()
    log.close()


def test_replay_of_each_projection_swaps_in_an_equal_copy_while_queries_keep_answering(live):
    settings, log, running = live
    rng = random.Random(6)
    histories = [random_history(rng, f"r{n}", prefix="r") for n in range(ORDERS)]
    log.write(random_history(rng, "phantom")[:2], abort=True)
    write_orders(log, histories)
    wait_applied(settings.database_url, log, timeout_s=90, check=running.check)
    before_rows, before_ends = without_zero_counters(dump_all(settings.database_url)), topic_ends(settings)

    for name, spec in SPECS.items():
        url = url_of(settings.database_url, name)
        generation = ProjectionStore(url, spec).pointer()[1]
        loop = QueryLoop(url, name, *questions(name, histories))
        result = ProjectionReplay(settings, spec).run()
        loop.finish()
        assert (result.replaced, result.generation) == (generation, generation + 1)
        assert result.events_applied == sum(map(len, histories))
        assert ProjectionStore(url, spec).pointer()[1] == generation + 1

    assert without_zero_counters(dump_all(settings.database_url)) == before_rows  # the new copies equal the live ones
    assert topic_ends(settings) == before_ends  # the replay wrote nothing to Kafka

    more = [random_history(rng, f"s{n}", prefix="s") for n in range(200)]
    write_orders(log, more)  # the live projector continues from the swapped-in generation
    wait_applied(settings.database_url, log, timeout_s=60, check=running.check)
    assert public_rows(dump_all(settings.database_url)) == reference(histories + more)


def test_a_replay_split_across_worker_processes_swaps_in_an_equal_copy(live):
    """--processes: the partitions are folded by several processes at once into one database (SQLite takes their
    writes in turns); sales-view's shared counters are increments from every worker."""
    settings, log, running = live
    rng = random.Random(11)
    histories = [random_history(rng, f"w{n}", prefix="w") for n in range(500)]
    write_orders(log, histories)
    wait_applied(settings.database_url, log, timeout_s=60, check=running.check)
    before = without_zero_counters(dump_all(settings.database_url))
    for name in ("order-view", "sales-view"):
        result = projection_replay(settings, spec_of(name), processes=3).run()
        assert result.events_applied == sum(map(len, histories)), name
        assert result.generation == result.replaced + 1, name
    assert without_zero_counters(dump_all(settings.database_url)) == before


def test_a_replay_chases_a_growing_log_and_never_shows_the_view_going_back(live):
    settings, log, running = live
    rng = random.Random(7)
    histories = [random_history(rng, f"g{n}", prefix="g") for n in range(600)]
    write_orders(log, histories)
    wait_applied(settings.database_url, log, timeout_s=60, check=running.check)
    url = url_of(settings.database_url, "order-view")
    seen = {"max": len(histories)}

    def never_back(count: int) -> bool:
        ok = count >= seen["max"]
        seen["max"] = max(seen["max"], count)
        return ok

    loop = QueryLoop(url, "order-view", lambda m: len(order_view.list_orders(m, limit=100_000)), never_back)
    more, stop_writing = [], threading.Event()

    def keep_writing() -> None:  # the log grows while the replay runs (a bounded amount, so it can catch up)
        n = 0
        while not stop_writing.is_set() and n < 2_000:
            batch = [random_history(rng, f"h{n + k}", prefix="h") for k in range(20)]
            n += 20
            write_orders(log, batch)
            more.extend(batch)
            time.sleep(0.02)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        result = ProjectionReplay(settings, spec_of("order-view"), chase_timeout_s=60).run()
    finally:
        stop_writing.set()
        writer.join(30)
    wait_applied(settings.database_url, log, timeout_s=60, check=running.check)
    total = len(histories) + len(more)
    deadline = time.monotonic() + 30
    while seen["max"] < total and time.monotonic() < deadline:  # let the loop ask once more after the last write
        time.sleep(0.1)
    loop.finish()
    assert seen["max"] == total
    assert result.generation == 2
    assert public_rows(dump_all(settings.database_url)) == reference(histories + more)


def test_a_changed_schema_version_is_refused_with_the_command_and_rebuilt_next_to_the_old_copy(live):
    settings, log, running = live
    rng = random.Random(8)
    histories = [random_history(rng, f"v{n}", prefix="v") for n in range(200)]
    write_orders(log, histories)
    wait_applied(settings.database_url, log, timeout_s=60, check=running.check)
    running.stop()
    spec = spec_of("order-view")
    url = url_of(settings.database_url, "order-view")
    store = ProjectionStore(url, spec)
    with store.engine.begin() as conn:  # as if an older release had built it
        conn.execute(
            projection_meta.update()
            .where(projection_meta.c.projection == spec.name)
            .values(schema_version=spec.schema_version - 1)
        )
    with pytest.raises(SchemaMismatch, match="`orderstream replay projection order-view --from-beginning`"):
        queries.ReadModel(url, "order-view").store.next_offsets()
    with pytest.raises(ReplayError, match="--from-beginning"):
        ProjectionReplay(settings, spec, from_time=histories[0][0].occurred_at).run()
    result = ProjectionReplay(settings, spec).run()
    assert store.pointer() == (spec.schema_version, result.generation)
    assert store.generations() == {result.replaced, result.generation}  # the old copy is kept until the next replay
    with queries.ReadModel(url, "order-view") as model:
        assert len(order_view.list_orders(model, limit=10_000)) == len(histories)
    assert public_rows(dump_all(settings.database_url))["order-view"] == reference(histories)["order-view"]
    ProjectionReplay(settings, spec).run()
    assert store.generations() == {result.generation, result.generation + 1}  # the next replay dropped the oldest
    store.dispose()
