"""SQLite's WAL checkpoints, off the write path.

By default SQLite checkpoints inside a commit: the commit that takes the write-ahead log past 1,000 pages copies them
into the database file and, with synchronous=NORMAL, fsyncs both files before it returns. A live projector commits
dozens of small batches a second, so about one batch in a hundred paid for that: on this project's 2-core machine an
order-view batch of 12 new orders took 1.0 ms at p50 and 11 ms at p99 alone, 29 ms at p99 under the latency bench's
load, and those batches were the tail of place -> visible (bench/latency.py).

So a projection's writer connections turn automatic checkpoints off (create_engine_for(writer=True) sets
wal_autocheckpoint=0) and the store that owns them runs a WalCheckpointer: a thread with its own connection that runs
a PASSIVE checkpoint every CHECKPOINT_INTERVAL_S. A passive checkpoint takes no lock a writer or a reader waits for
(it copies what no reader still needs and leaves the rest for the next one), and sqlite3 releases the GIL while it
copies and fsyncs, so the batches go on meanwhile. What a crash can lose does not change: a commit is in the log
either way, and the log is replayed into the database file at the next open.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.5  # the log holds about what half a second of writes added; an idle round copies nothing
_BUSY_TIMEOUT_MS = 5_000


class WalCheckpointer:
    """Checkpoints the WAL of one SQLite file every interval_s, in a daemon thread with its own connection, until
    close(). Several on one file (processes sharing a projection) are harmless: checkpoints of a file take turns."""

    def __init__(self, path: str, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoints", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection = None
        try:
            while not self._stop.wait(self.interval_s):
                if connection is None and Path(self.path).is_file():  # connect() would create a missing file
                    connection = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                if connection is not None:
                    self._checkpoint(connection)
        finally:
            if connection is not None:
                connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            # another connection's checkpoint, or the file not in WAL mode yet: the next round checkpoints
            if "locked" not in str(exc) and "busy" not in str(exc):
                log.warning("%s: WAL checkpoint failed (%s); retrying in %.1f s", self.path, exc, self.interval_s)
