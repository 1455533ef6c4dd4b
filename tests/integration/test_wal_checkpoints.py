"""A projection's SQLite writer never checkpoints the WAL inside a commit; its store's checkpointer thread does (real
SQLite files, no Kafka). See orderstream/views/wal_checkpoints.py for why."""

from __future__ import annotations

import os
import threading

from sqlalchemy import text

from orderstream.views.registry import spec_of
from orderstream.views.store import ProjectionStore, Record, create_engine_for
from orderstream.views.wal_checkpoints import WalCheckpointer
from tests.support.histories import random_history
from tests.support.waiting import wait_for

PAGE = 4096


def _checkpointers() -> int:
    return sum(thread.name == "sqlite-wal-checkpoints" for thread in threading.enumerate())


def test_writer_commits_leave_the_log_to_the_checkpointer(tmp_path):
    path = tmp_path / "view.db"
    engine = create_engine_for(f"sqlite:///{path}", writer=True)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT)"))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        empty = path.stat().st_size
        for batch in range(300):  # ~3,000 pages in 300 commits: SQLite's default would checkpoint at 1,000
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n, :body)"), [{"n": batch * 10 + i, "body": "x" * 4000}
                                                                       for i in range(10)])  # fmt: skip
        assert path.stat().st_size == empty, "a commit checkpointed the log into the database file"
        assert os.path.getsize(f"{path}-wal") > 2_000 * PAGE

        checkpointer = WalCheckpointer(str(path), interval_s=0.05)
        try:
            wait_for(lambda: path.stat().st_size > 2_000 * PAGE, 10, "the checkpointer copying the log", poll_s=0.05)
        finally:
            checkpointer.close()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 3_000
    finally:
        engine.dispose()


def test_a_writers_store_runs_a_checkpointer_until_it_is_disposed(tmp_path):
    import random

    path = tmp_path / "order-view.db"
    before = _checkpointers()
    store = ProjectionStore(f"sqlite:///{path}", spec_of("order-view"), writer=True)
    try:
        generation = store.ensure()
        assert _checkpointers() == before + 1
        rng = random.Random(7)
        records = [Record("x.orders.events", 0, n, random_history(rng, f"o-{n}")[0]) for n in range(3_000)]
        for start in range(0, len(records), 100):
            store.apply(records[start : start + 100], generation)
        size = path.stat().st_size
        # nothing else writes or checkpoints the file: only the store's own thread can move the rows into it
        wait_for(lambda: path.stat().st_size > size, 10, "the store's checkpointer checkpointing", poll_s=0.05)
    finally:
        store.dispose()
    assert _checkpointers() == before
    reader = ProjectionStore(f"sqlite:///{path}", spec_of("order-view"))  # a reader's store runs none
    try:
        assert _checkpointers() == before
        assert len(reader.dump()["orders"]) == 3_000  # every batch is there
    finally:
        reader.dispose()
