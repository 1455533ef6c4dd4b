"""The projector dead-letters what it cannot decode or apply and projects everything else (SQLite and PostgreSQL).

An order whose first event was dead-lettered is parked: its later events cannot apply either (each skips a version)
and follow it into the DLQ, while other orders are projected as usual. A repeated version (a copy written back) is
ignored, without a letter. A replay of such a log skips the same records without writing a letter (the live
projector's group wrote them) and rebuilds exactly the live view."""

from __future__ import annotations

import json
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
        log.write([good[0][-1]])  # a repeat of ok-0's last event: ignored, no letter
        log.write_raw(b"garbage-1", b"\x00 not avro")
        wait_applied(db_url, log, names=("order-view",), check=alive)
        replay_skips_what_the_projector_dead_letters(settings, db_url, rejected=len(parked))
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


def replay_skips_what_the_projector_dead_letters(settings, db_url, rejected: int) -> None:
    """`replay projection` over a log holding records that cannot be projected: it skips them (the count is in its
    --json), swaps, and the new generation holds exactly the rows the live projector made."""
    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    live_rows = store.dump()
    _, live = store.pointer()
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
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records_rejected"] == rejected and summary["generation"] == live + 1, summary
    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    assert store.pointer()[1] == live + 1
    assert store.dump() == live_rows
    store.dispose()
