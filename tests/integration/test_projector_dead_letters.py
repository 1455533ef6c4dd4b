"""The projector dead-letters what it cannot decode or apply and projects everything else (SQLite and PostgreSQL).

An order whose first event was dead-lettered is parked: its later events cannot apply either and follow it into the
DLQ, while other orders are projected as usual. A replay of such a log does not dead-letter: it stops with one line
naming the record and swaps nothing."""

from __future__ import annotations

import random
import threading

from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.runtime.projector import Projector
from orderstream.views.registry import spec_of
from orderstream.views.store import ProjectionStore
from tests.support.event_log import EventLog, wait_applied
from tests.support.histories import random_history
from tests.support.orders import read_topic


def test_bad_records_are_dead_lettered_and_the_rest_projected(topics, db_url):
    settings = topics.model_copy(update={"database_url": db_url})
    rng = random.Random(7)
    good = [random_history(rng, f"ok-{i}") for i in range(5)]
    parked = random_history(rng, "parked-1")
    while len(parked) < 3:
        parked = random_history(rng, "parked-1")
    log = EventLog(settings)
    log.write([e for history in good for e in history])
    log.write(parked[1:])  # its OrderPlaced never arrives: every later event of it cannot apply

    stop = threading.Event()
    projector = Projector(settings, spec_of("order-view"))
    thread = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    thread.start()
    try:

        def alive() -> None:
            assert thread.is_alive(), "the projector stopped instead of dead-lettering"

        wait_applied(db_url, log, names=("order-view",), check=alive)
        replay_stops_on_the_parked_order(settings, db_url)
        log.write_raw(b"garbage-1", b"\x00 not avro")
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


def replay_stops_on_the_parked_order(settings, db_url) -> None:
    """`replay projection` over a log holding events that cannot be projected: exit 1, one line, nothing swapped."""
    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    live = store.pointer()
    store.dispose()
    cli = [
        "-b",
        settings.effective_bootstrap,
        "--topic-prefix",
        settings.topic_prefix,
        "--data-dir",
        str(settings.data_dir),
        "replay",
        "projection",
        "order-view",
        "--from-beginning",
        "--json",
    ]
    result = CliRunner().invoke(app, cli, env={"ORDERSTREAM_DATABASE_URL": db_url})
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and "cannot be projected" in error[0] and "order parked-1" in error[0], error
    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    assert store.pointer() == live
    store.dispose()
