"""The projector dead-letters what it cannot decode or apply and projects everything else (SQLite and PostgreSQL).

An order whose first event was dead-lettered is parked: its later events cannot apply either and follow it into the
DLQ, while other orders are projected as usual."""

from __future__ import annotations

import random
import threading

from orderstream.consumers.projector import Projector
from orderstream.projections.registry import spec_of
from orderstream.projections.store import ProjectionStore
from tests.support.databases import db_url  # noqa: F401
from tests.support.event_log import EventLog, wait_applied
from tests.support.histories import random_history
from tests.support.orders import read_topic


def test_bad_records_are_dead_lettered_and_the_rest_projected(topics, db_url):  # noqa: F811
    settings = topics.model_copy(update={"database_url": db_url})
    rng = random.Random(7)
    good = [random_history(rng, f"ok-{i}") for i in range(5)]
    parked = random_history(rng, "parked-1")
    while len(parked) < 3:
        parked = random_history(rng, "parked-1")
    log = EventLog(settings)
    log.write([e for history in good for e in history])
    log.write_raw(b"garbage-1", b"\x00 not avro")
    log.write(parked[1:])  # its OrderPlaced never arrives: every later event of it cannot apply

    stop = threading.Event()
    projector = Projector(settings, spec_of("order-view"))
    thread = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        def alive() -> None:
            assert thread.is_alive(), "the projector stopped instead of dead-lettering"

        wait_applied(db_url, log, names=("order-view",), check=alive)
    finally:
        stop.set()
        thread.join(30)

    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    orders = {row[0] for row in store.dump()["orders"]}
    store.dispose()
    assert orders == {f"ok-{i}" for i in range(5)}

    letters = read_topic(settings, "orders.events.dlq", until=lambda got: len(got) >= 1 + len(parked) - 1, decode=False)
    stages = sorted({k: v.decode() for k, v in m.headers()}["dlq.stage"] for m, _ in letters)
    assert stages == ["apply"] * (len(parked) - 1) + ["decode"]
    keys = sorted(m.key() for m, _ in letters)
    assert keys == sorted([b"garbage-1"] + [b"parked-1"] * (len(parked) - 1))
