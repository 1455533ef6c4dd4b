"""`replay projection NAME --from-time T` on SQLite and PostgreSQL: orders appended from T on are rebuilt from the log,
the others are copied from the live generation, and the events of copied orders are never applied twice.

The log: "old" orders placed before T, each with half of its events before T and the rest after T, interleaved with
"new" orders placed after T. Then two rows of the live order-view are corrupted on purpose - one of an old order, one
of a new order - so the test can see which rows were rebuilt and which were copied."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from itertools import zip_longest

from orderstream.runtime.replay_workers import projection_replay
from orderstream.services.projections import build_projections
from orderstream.views.registry import SPECS, spec_of
from orderstream.views.store import ProjectionStore
from tests.support.databases import url_of
from tests.support.event_log import EventLog, dump_all, order_events_topic, wait_applied, write_orders
from tests.support.histories import public_rows, random_history, reference
from tests.support.orders import RunningService


def test_from_time_rebuilds_orders_placed_from_then_and_copies_the_rest(settings, db_url):
    settings = order_events_topic(settings).model_copy(update={"database_url": db_url, "projection_batch_size": 200})
    rng = random.Random(9)
    old = [random_history(rng, f"a{n}", prefix="a") for n in range(400)]
    new = [random_history(rng, f"b{n}", prefix="b") for n in range(300)]
    log = EventLog(settings)
    running = RunningService(build_projections(settings, tuple(SPECS))).start()
    try:
        write_orders(log, [h[: (len(h) + 1) // 2] for h in old])
        time.sleep(0.05)
        moment = datetime.now(UTC)
        time.sleep(0.05)
        late = [h[(len(h) + 1) // 2 :] for h in old]
        mixed = [e for pair in zip_longest(late, new, fillvalue=[]) for h in pair for e in h]
        for start in range(0, len(mixed), 200):
            log.write(mixed[start : start + 200])
        wait_applied(settings.database_url, log, timeout_s=60, check=running.check)
    finally:
        running.stop()  # stopped, so the rows corrupted below stay as they are set
    assert public_rows(dump_all(settings.database_url)) == reference(old + new)
    before_rows = dump_all(settings.database_url)

    # corrupt one copied and one rebuilt row of the live order-view
    store = ProjectionStore(url_of(settings.database_url, "order-view"), spec_of("order-view"))
    orders = store.tables(store.pointer()[1])["orders"]
    with store.engine.begin() as conn:
        conn.execute(orders.update().where(orders.c.order_id == "a7").values(customer_id="copied-as-is"))
        conn.execute(orders.update().where(orders.c.order_id == "b7").values(customer_id="rebuilt"))

    old_events_after = sum(len(h) for h in late)
    for n, (name, spec) in enumerate(SPECS.items()):
        # worker processes, then one process, in turns (the skip of copied events must hold in both)
        result = projection_replay(settings, spec, from_time=moment, processes=2 - n % 2).run()
        assert result.rebuilt_aggregates == len(new), name
        assert result.events_applied == sum(map(len, new)), name  # only the new orders' events
        assert result.events_skipped == old_events_after, name  # the old orders' late events: in the copied rows

    after = dump_all(settings.database_url)
    rows = {row[0]: row for row in after["order-view"]["orders"]}
    assert rows["a7"][1] == "copied-as-is"  # copied from the live generation, corruption included
    assert rows["b7"][1] == next(h[0].customer_id for h in new if h[0].order_id == "b7")  # rebuilt from the log
    expected = reference(old + new)
    got = public_rows(after)
    # the aggregates are exact; rows whose counters all fell back to zero (which mean nothing and queries leave out)
    # are not recreated for copied orders, so the comparison is on the public rows
    for name in ("customer-view", "sales-view"):
        assert got[name] == expected[name] == public_rows(before_rows)[name], name
    assert after["customer-view"]["orders"] == before_rows["customer-view"]["orders"]
    assert after["sales-view"]["orders"] == before_rows["sales-view"]["orders"]
    # every order's lines and timeline (the last two columns), a7's too: only its customer was corrupted
    assert [r[-2:] for r in got["order-view"]["orders"]] == [r[-2:] for r in expected["order-view"]["orders"]]
    assert [r for r in got["order-view"]["orders"] if r[0] != "a7"] == [
        r for r in expected["order-view"]["orders"] if r[0] != "a7"
    ]
    store.dispose()
