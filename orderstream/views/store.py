"""A projection's database: the one place that writes it.

ProjectionStore guarantees:
- apply() writes a batch's row changes AND the next offset of every partition in the batch in ONE transaction, so
  the rows always match the stored positions, whatever crashes.
- Records at or past the stored position are applied; records below it were applied already (two instances
  overlapping during a rebalance) and are dropped, so an event never counts twice. Offset rows are locked for
  the transaction (SELECT ... FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite); on PostgreSQL a partition's
  first batch inserts its offset row first, so there is a row to lock, and the pointer row is read FOR SHARE, so a
  batch never commits into a generation a swap has just replaced. Shared counter rows are merged in key order and a
  deadlock or serialization failure retries the transaction.
- Tables are created on first start; a database built with another schema version is refused (SchemaMismatch).
- Writes go through the pointer (projection_meta.active_generation): when a rebuild swaps generations, the next
  apply() raises GenerationChanged and the caller re-seeks to the new generation's offsets.
- A replay (replay.py) writes a shadow generation with apply(shadow=True) and swaps it in with swap_in(): the new
  generation's offset rows and the pointer flip in ONE transaction, only if it is at or past the live one everywhere.
SQLite runs in WAL mode with synchronous=NORMAL and a busy timeout, so queries read while the projector writes; a
writer's store checkpoints the log in a thread of its own (views/wal_checkpoints.py), never inside a batch's commit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, inspect, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from orderstream.domain.events import Event
from orderstream.telemetry.tracing import trace_engine
from orderstream.views.base import RowChanges, follow_versions
from orderstream.views.bulk import BulkRows
from orderstream.views.spec import BulkChanges, ProjectionSpec
from orderstream.views.tables import TableSet, bookkeeping, projection_meta, projection_offsets
from orderstream.views.wal_checkpoints import WalCheckpointer

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_DDL_LOCK_KEY = 0x6F7264657273  # pg_advisory_xact_lock key held while a projection creates its tables

Position = tuple[str, int]  # (topic, partition)
Changes = RowChanges | BulkChanges  # what project() or a bulk fold (spec.bulk) made of a batch

# Built once: a statement built per batch leaves ~40 SQLAlchemy objects in reference cycles, and a live projector
# applying hundreds of small batches a second made a 100 ms garbage-collector pause every few seconds.
_META_QUERY = select(projection_meta).where(projection_meta.c.projection == bindparam("projection"))
_META_QUERY_FOR_SHARE = _META_QUERY.with_for_update(read=True)  # PostgreSQL: a swap (FOR UPDATE) waits for the batch
_ALL_OFFSETS = select(
    projection_offsets.c.topic, projection_offsets.c.partition, projection_offsets.c.next_offset
).where(
    projection_offsets.c.projection == bindparam("projection"),
    projection_offsets.c.generation == bindparam("generation"),
)
_OFFSETS = _ALL_OFFSETS.where(
    projection_offsets.c.topic.in_(bindparam("topics", expanding=True)),
    projection_offsets.c.partition.in_(bindparam("partitions", expanding=True)),
)
# Locked in key order, so two writers never wait on each other's rows in a cycle.
_KEY_ORDER = (projection_offsets.c.topic, projection_offsets.c.partition)
_ALL_OFFSETS_FOR_UPDATE = _ALL_OFFSETS.order_by(*_KEY_ORDER).with_for_update()  # swap_in: the live generation's rows
_OFFSETS_FOR_UPDATE = _OFFSETS.order_by(*_KEY_ORDER).with_for_update()
# PostgreSQL errors after which the whole transaction can simply run again (deadlock, serialization failure).
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
_RETRIES = 5


class StoreError(RuntimeError):
    """The projection's database cannot be used as it is; the message says why and what to do."""


class NotInitialized(StoreError):
    pass


class SchemaMismatch(StoreError):
    pass


class GenerationChanged(StoreError):
    """The pointer now names another generation: re-read positions and continue there."""

    def __init__(self, projection: str, generation: int) -> None:
        super().__init__(f"{projection}: the live generation is now {generation}")
        self.generation = generation


_POSITION = itemgetter(0, 1)  # a Record's (topic, partition), read in C
_OFFSET = itemgetter(2)


class Record(NamedTuple):
    """One consumed record: where it sits and its decoded event (None: handed to the dead-letter hook, not projected).
    A NamedTuple: a projector makes one per event, and a frozen dataclass would set each field through
    object.__setattr__, twice as slow."""

    topic: str
    partition: int
    offset: int
    event: Event | None


def create_engine_for(url: str, *, writer: bool = False) -> Engine:
    """An engine for a projection URL. SQLite: WAL, synchronous=NORMAL, busy_timeout, explicit BEGIN (IMMEDIATE for
    the writer, so its read of the offsets and its writes are one serialized transaction; a plain BEGIN for the
    writer's connections opened with execution_options(snapshot_read=True)). A writer's connections never checkpoint
    the log in a commit (wal_autocheckpoint=0): its owner runs a WalCheckpointer, as ProjectionStore does."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # the SQLAlchemy recipe for real SQLite transactions
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if writer:  # WAL is a property of the file: the writer sets it once, readers find it set
            _enable_wal(cursor)
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        immediate = writer and not connection.get_execution_options().get("snapshot_read", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cursor, attempts: int = 200) -> None:
    """Switch a SQLite file to WAL. The switch needs the file to itself and SQLite answers "database is locked" at
    once, without waiting, while a reader of a brand-new file holds it; so retry for a while (10 s)."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL; None for an in-memory database or a server URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return parsed.database


def database_exists(url: str) -> bool:
    """False for a SQLite file that was never created (a projection that never ran); True for any server URL."""
    path = _sqlite_file(url)
    return path is None or Path(path).is_file()


class WritersQueue:
    """Writers of one SQLite file queue for it on a kernel file lock (<file>.writers) before BEGIN IMMEDIATE.

    SQLite itself lets a writer that finds the file locked sleep and retry (1, 2, 5 ... 100 ms), so with several
    processes writing (replay --processes, projectors sharing a group) the lock sat free while they slept and one
    worker finished a second after the other. A blocked flock wakes the next writer the moment the lock is released.
    Nothing depends on it for correctness: a writer that does not queue still gets BEGIN IMMEDIATE's busy timeout.
    A no-op for PostgreSQL and in-memory databases (row locks there)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._file = None
        self._thread_lock = threading.Lock()  # flock does not exclude threads sharing one open file

    @classmethod
    def for_url(cls, url: str) -> WritersQueue:
        path = _sqlite_file(url)
        return cls(None if path is None else Path(f"{path}.writers"))

    def __enter__(self) -> None:
        if self._path is None:
            return
        self._thread_lock.acquire()
        try:
            if self._file is None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._path, "a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc_info) -> None:
        if self._path is None:
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ProjectionStore:
    """One projection's database: its pointer, its generations' tables and their offsets. See the module docstring."""

    def __init__(self, url: str, spec: ProjectionSpec, *, writer: bool = False) -> None:
        self.url = url
        self.spec = spec
        self.engine = trace_engine(create_engine_for(url, writer=writer))  # SQL spans when tracing is on
        self._tables: dict[int, TableSet] = {}
        self._bookkeeping_exists = False
        self._bulk = BulkRows(self.engine.dialect)
        self._writers_queue = WritersQueue.for_url(url)
        self._postgres = self.engine.dialect.name == "postgresql"
        path = _sqlite_file(url) if writer else None
        self._checkpoints = WalCheckpointer(path) if path is not None else None

    def dispose(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.close()
        self.engine.dispose()
        self._writers_queue.close()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read-only transaction. On a writer's SQLite engine a plain BEGIN (a snapshot), not BEGIN IMMEDIATE: a
        read must not queue behind, or time out on, other processes' writes (a rebalance callback reads positions)."""
        with self.engine.connect().execution_options(snapshot_read=True) as conn, conn.begin():
            yield conn

    def tables(self, generation: int) -> TableSet:
        if generation not in self._tables:
            self._tables[generation] = self.spec.tables(generation)
        return self._tables[generation]

    # --- the pointer ---------------------------------------------------------------------------------------------

    def ensure(self, *, defer_indexes: bool = False) -> int:
        """Create the bookkeeping and first generation's tables if needed; check the schema version; return the live
        generation. defer_indexes=True creates a first generation without its secondary indexes (a projector about to
        load a backlog into it builds them once it has caught up: apply(build_indexes=True))."""
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":  # projections sharing a database must not race their DDL
                conn.execute(select(func.pg_advisory_xact_lock(_DDL_LOCK_KEY)))
            bookkeeping.create_all(conn)
            row = self._meta(conn)
            if row is None:
                self._create_generation(conn, 1, defer_indexes=defer_indexes)
                conn.execute(
                    projection_meta.insert().values(
                        projection=self.spec.name, schema_version=self.spec.schema_version, active_generation=1
                    )
                )
                return 1
            self._check_version(row.schema_version)
            self._create_generation(conn, row.active_generation)
            return row.active_generation

    def active_generation(self, conn: Connection, *, lock: bool = False) -> int:
        """The live generation, after checking the database was built by this schema version. lock=True (a write
        transaction) holds the pointer row FOR SHARE on PostgreSQL until the commit, so a swap waits for it."""
        row = self._meta(conn, lock=lock)
        return self.live_generation(None if row is None else (row.schema_version, row.active_generation))

    def live_generation(self, pointer: tuple[int, int] | None) -> int:
        """The live generation of a pointer row's (schema_version, active_generation), after checking the database
        was built by this schema version; None (no pointer row): NotInitialized."""
        if pointer is None:
            raise self.not_started()
        schema_version, generation = pointer
        self._check_version(schema_version)
        return generation

    def create_generation(self, generation: int, *, defer_indexes: bool = False) -> None:
        """Create a new (empty) generation's tables next to the live one; a rebuild fills them. defer_indexes=True
        leaves out the secondary indexes: a bulk load writes each row once instead of once per index, and
        create_indexes() builds them in one sort each before the generation goes live."""
        with self.engine.begin() as conn:
            self._create_generation(conn, generation, defer_indexes=defer_indexes)

    def create_indexes(self, generation: int) -> None:
        """Create the secondary indexes a generation lacks (create_generation(defer_indexes=True)); idempotent."""
        with self.engine.begin() as conn:
            self._create_indexes(conn, generation)

    def lacks_indexes(self, generation: int) -> bool:
        """True when a secondary index of the generation's tables does not exist (its load deferred them)."""
        with self._reading() as conn:
            return bool(self._missing_indexes(conn, generation))

    def _missing_indexes(self, conn: Connection, generation: int) -> list:
        found = inspect(conn)
        return [
            index
            for table in self.tables(generation).values()
            for index in table.indexes
            if not found.has_index(table.name, index.name)
        ]

    def _create_indexes(self, conn: Connection, generation: int) -> None:
        if self._postgres:  # two instances catching up side by side: one builds, the other then finds them built
            conn.execute(select(func.pg_advisory_xact_lock(_DDL_LOCK_KEY)))
        began = time.monotonic()
        built = self._missing_indexes(conn, generation)
        for index in built:
            index.create(conn)
        if built:
            log.info(
                "%s: built %d secondary index(es) of generation %d in %.1fs",
                self.spec.name,
                len(built),
                generation,
                time.monotonic() - began,
            )

    def activate(self, generation: int, schema_version: int) -> None:
        """Swap a generation in: one transaction updates the pointer, so readers see the old or the new one whole."""
        with self.engine.begin() as conn:
            conn.execute(
                projection_meta.update()
                .where(projection_meta.c.projection == self.spec.name)
                .values(active_generation=generation, schema_version=schema_version)
            )

    def _meta(self, conn: Connection, *, lock: bool = False):
        meta = projection_meta
        if not self._bookkeeping_exists:  # once seen, the table stays: skip the catalog query on every batch
            if not self.engine.dialect.has_table(conn, meta.name):
                return None
            self._bookkeeping_exists = True
        query = _META_QUERY_FOR_SHARE if lock and self._postgres else _META_QUERY
        return conn.execute(query, {"projection": self.spec.name}).one_or_none()

    def not_started(self) -> NotInitialized:
        """The error of a view whose projector has not yet written its pointer row."""
        return NotInitialized(f"{self.spec.name} has not started yet: run `orderstream run projections`")

    def _check_version(self, stored: int) -> None:
        if stored != self.spec.schema_version:
            raise SchemaMismatch(
                f"{self.spec.name} in {self._where()} was built with schema version {stored}, this release projects "
                f"version {self.spec.schema_version}: rebuild it next to the old one with "
                f"`orderstream replay projection {self.spec.name} --from-beginning` (queries keep answering from the "
                "old copy until it swaps in), or run the release that built it"
            )

    def _create_generation(self, conn: Connection, generation: int, *, defer_indexes: bool = False) -> None:
        tables = self.tables(generation)
        next(iter(tables.values())).metadata.create_all(conn)
        if defer_indexes:  # a bulk load writes each row once instead of once per index; _create_indexes sorts once
            for table in tables.values():
                for index in table.indexes:
                    index.drop(conn, checkfirst=True)

    def _where(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # --- positions -----------------------------------------------------------------------------------------------

    def next_offsets(self, generation: int | None = None) -> dict[Position, int]:
        """The stored next offset of every (topic, partition) of a generation (default: the live one)."""
        with self._reading() as conn:
            if generation is None:
                generation = self.active_generation(conn)
            return self._offsets(conn, generation, None)

    def _offsets(self, conn: Connection, generation: int, positions: Iterable[Position] | None, lock=False):
        """Stored next offsets of a generation: every partition's, or those of `positions` only. On PostgreSQL,
        lock=True locks the rows read FOR UPDATE (with positions: only theirs, not other writers' partitions)."""
        params = {"projection": self.spec.name, "generation": generation}
        for_update = lock and self._postgres
        if positions is None:
            query = _ALL_OFFSETS_FOR_UPDATE if for_update else _ALL_OFFSETS
            return {(row.topic, row.partition): row.next_offset for row in conn.execute(query, params)}
        positions = set(positions)
        if not self._postgres:  # one writer per file: every row of the generation (a few per topic partition), no
            # IN lists to expand per call (43 us of SQLAlchemy's time on each small live batch)
            rows = conn.execute(_ALL_OFFSETS, params)
            return {(r.topic, r.partition): r.next_offset for r in rows if (r.topic, r.partition) in positions}
        query = _OFFSETS_FOR_UPDATE if for_update else _OFFSETS
        params |= {"topics": sorted({t for t, _ in positions}), "partitions": sorted({p for _, p in positions})}
        rows = conn.execute(query, params)
        return {(row.topic, row.partition): row.next_offset for row in rows if (row.topic, row.partition) in positions}

    # --- the write path ------------------------------------------------------------------------------------------

    def apply(
        self,
        records: Sequence[Record],
        generation: int,
        *,
        before_commit: Callable[[], None] | None = None,
        shadow: bool = False,
        bulk: bool = False,
        build_indexes: bool = False,
    ) -> dict[Position, int]:
        """Project a batch and store the next offsets, in one transaction. Returns the next offset per partition of
        the batch (what the caller then commits to Kafka). Raises GenerationChanged when the pointer moved.
        shadow=True writes a generation a replay is building instead: it must NOT be the live one (StoreError), and
        the schema version is not checked (a replay builds this release's version next to an older live one).
        bulk=True folds with the view's bulk form (spec.bulk, when it has one) instead of project(): the same rows,
        written as tuples; everything else (offsets in the same transaction, the checks below) is the same.
        build_indexes=True first builds the secondary indexes the generation lacks (ensure(defer_indexes=True)), in
        the same transaction: the positions of a projector's last backlog batch commit with the indexes, never
        without them.

        On SQLite a bulk batch is folded BEFORE the write transaction, on a snapshot read of the batch's positions and
        state rows, so that (one writer per file) several processes projecting different partitions (a replay's
        workers, instances catching up) fold in parallel and only take turns to write. The write transaction reads
        the positions again under its lock: when they are what the snapshot saw, nothing touched these partitions'
        aggregates in between (every upsert a projection makes is a row of an aggregate of the batch, and an
        aggregate's events all sit on one partition; rows shared across aggregates are written as increments, which
        commute) and the folded rows are written as they are; when they moved (another instance applied these
        partitions meanwhile), the batch is folded again under the lock. A small batch (live traffic) is folded under
        the lock in its write transaction, as on PostgreSQL, where writers of other partitions run side by side: its
        fold takes less time than a second transaction would (the snapshot's BEGIN, pointer and offset reads and
        COMMIT were a third of a 5-event batch's 0.7 ms)."""
        positions = set(map(_POSITION, records))
        for _ in range(_RETRIES - 1):
            try:
                return self._apply_once(records, generation, positions, before_commit, shadow, bulk, build_indexes)
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                    raise
                log.info("%s: batch transaction rolled back (%s), running it again", self.spec.name, exc.orig.sqlstate)
        # the last try: errors out
        return self._apply_once(records, generation, positions, before_commit, shadow, bulk, build_indexes)

    def _apply_once(
        self, records, generation, positions, before_commit, shadow, bulk, build_indexes=False
    ) -> dict[Position, int]:
        # SQLite, bulk batch: fold on a snapshot first, so that writers of other partitions fold in parallel and only
        # take turns to write. PostgreSQL writers of other partitions never wait on each other's locks, and a small
        # batch folds in less time than a transaction takes, so those are folded inside their write transaction: one
        # connection and one transaction per batch, not two (on PostgreSQL the snapshot's checkout ping, BEGIN,
        # pointer and offset reads and COMMIT were a sixth of a rebuild's round trips).
        ahead = self._fold_ahead(records, generation, positions, shadow, bulk) if bulk and not self._postgres else None
        with self._writers_queue, self.engine.begin() as conn:
            self._check_generation(conn, generation, shadow, lock=True)
            if build_indexes:  # first: it waits for other writers of these tables rather than holding rows they need
                self._create_indexes(conn, generation)
            stored = self._offsets(conn, generation, positions, lock=True)
            if self._postgres and len(stored) < len(positions):  # a partition's first batch: no row to lock yet
                self._claim_positions(conn, generation, [p for p in positions if p not in stored])
                stored = self._offsets(conn, generation, positions, lock=True)
            if ahead is not None and all((ahead[0][p] or 0) == stored.get(p, 0) for p in positions):
                fresh, changes = ahead[1], ahead[2]
            else:
                fresh, changes = self._fold(conn, records, generation, stored, bulk)
            if changes is not None:
                self._write(conn, self.tables(generation), changes)
            after = {p: stored[p] for p in positions if p in stored}
            # a partition's records come in offset order: its last fresh one is its highest (the one a dict keeps)
            last = dict(zip(map(_POSITION, fresh), map(_OFFSET, fresh), strict=True))
            after |= {p: o + 1 for p, o in last.items()}
            changed = [
                {"projection": self.spec.name, "generation": generation, "topic": t, "partition": p, "next_offset": o}
                for (t, p), o in after.items()
                if stored.get((t, p)) != o
            ]
            if changed:
                self._bulk.upsert(conn, projection_offsets, changed)
            if before_commit is not None:
                before_commit()
        return after

    def _claim_positions(self, conn: Connection, generation: int, unseen: list[Position]) -> None:
        """PostgreSQL: give partitions that had no offset row one (next offset 0, "nothing applied"), then lock the
        rows FOR UPDATE again. A missing row locks nothing, so two instances overlapping on a partition's first batch
        (a rebalance) would both write it and add its counters twice; the insert waits for the other's uncommitted
        one instead, and the lock then reads its position. A claimed row is set to the batch's position in the same
        transaction (every record of a batch is at or past offset 0)."""
        if not unseen:
            return
        rows = [
            {"projection": self.spec.name, "generation": generation, "topic": t, "partition": p, "next_offset": 0}
            for t, p in sorted(unseen)
        ]
        conn.execute(postgresql_insert(projection_offsets).values(rows).on_conflict_do_nothing())

    def _fold_ahead(self, records, generation, positions, shadow, bulk) -> tuple[dict, list[Record], Changes | None]:
        """(positions as read, fresh records, row changes) from a read-only snapshot, without the write lock."""
        with self._reading() as conn:
            self._check_generation(conn, generation, shadow)
            stored = self._offsets(conn, generation, positions)
            fresh, changes = self._fold(conn, records, generation, stored, bulk)
        return {p: stored.get(p) for p in positions}, fresh, changes

    def _fold(self, conn: Connection, records, generation: int, stored, bulk) -> tuple[list[Record], Changes | None]:
        """The records at or past the stored positions, and the rows they change (None: no event among them)."""
        backwards = records[::-1]  # a partition's records come in offset order: its first one is its lowest
        firsts = dict(zip(map(_POSITION, backwards), map(_OFFSET, backwards), strict=True))
        if all(o >= stored.get(p, 0) for p, o in firsts.items()):
            fresh = records  # the usual batch: every record is past its partition's stored position
        else:
            fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
        events = [r.event for r in fresh if r.event is not None]
        if not events:
            return fresh, None
        current = self._bulk.load(conn, self.tables(generation)[self.spec.state_role], {e.aggregate_id for e in events})
        form = self.spec.bulk if bulk else None
        if form is not None and form.follows_versions:
            return fresh, form.fold(events, current)  # the poison policy below, in the fold's own pass
        # repeats left out, a gap raises ProjectionError (unless the view's versions only increase: spec.version_gaps)
        events = follow_versions(events, current, gaps=self.spec.version_gaps)
        if not events:
            return fresh, None
        if form is not None:
            return fresh, form.fold(events, current)
        return fresh, self.spec.project(events, current)

    def _check_generation(self, conn: Connection, generation: int, shadow: bool, *, lock: bool = False) -> None:
        if shadow:
            self._check_shadow(conn, generation, lock=lock)
            return
        live = self.active_generation(conn, lock=lock)
        if live != generation:
            raise GenerationChanged(self.spec.name, live)

    def _write(self, conn: Connection, tables: TableSet, changes: Changes) -> None:
        if not isinstance(changes, RowChanges):  # a bulk fold's rows
            for role, kind, rows in changes:
                self._bulk.write_tuples(conn, tables[role], kind, rows)
            return
        for role, rows in changes.upserts.items():
            if rows:
                self._bulk.upsert(conn, tables[role], list(rows.values()))
        for role, increments in changes.increments.items():
            if increments:
                table = tables[role]
                keys = [column.name for column in table.primary_key.columns]
                counters = [c.name for c in table.columns if not c.primary_key]
                rows = [
                    dict(zip(keys, key, strict=True)) | {c: deltas.get(c, 0) for c in counters}
                    for key, deltas in increments.items()
                ]
                self._bulk.add(conn, table, rows)

    # --- generations (used by replay) ------------------------------------------------------------------------

    def pointer(self) -> tuple[int, int] | None:
        """(schema_version, active_generation) as stored, WITHOUT the version check; None before the first start."""
        with self._reading() as conn:
            row = self._meta(conn)
            return None if row is None else (row.schema_version, row.active_generation)

    def generations(self) -> set[int]:
        """Every generation that has tables or offset rows in the database (live, replaced or half-built)."""
        probe = 987654321  # a generation number no database holds: where it appears in a name, the number goes
        patterns = [
            re.compile(re.escape(t.name).replace(str(probe), r"(\d+)") + "$") for t in self.tables(probe).values()
        ]
        found: set[int] = set()
        with self._reading() as conn:
            for name in inspect(conn).get_table_names():
                for pattern in patterns:
                    match = pattern.match(name)
                    if match:
                        found.add(int(match.group(1)))
            if self.engine.dialect.has_table(conn, projection_offsets.name):
                o = projection_offsets
                query = select(o.c.generation).where(o.c.projection == self.spec.name).distinct()
                found.update(row.generation for row in conn.execute(query))
        return found

    def drop_generation(self, generation: int) -> None:
        """Drop a generation's tables and offset rows. Refuses the live generation."""
        with self.engine.begin() as conn:
            row = self._meta(conn)
            if row is not None and row.active_generation == generation:
                raise StoreError(f"{self.spec.name}: generation {generation} is live; it cannot be dropped")
            next(iter(self.tables(generation).values())).metadata.drop_all(conn, checkfirst=True)
            conn.execute(
                projection_offsets.delete().where(
                    projection_offsets.c.projection == self.spec.name, projection_offsets.c.generation == generation
                )
            )

    def write(self, generation: int, changes: RowChanges) -> None:
        """Write row changes into a shadow generation (a replay's copied rows and their aggregates); never the live."""
        with self.engine.begin() as conn:
            self._check_shadow(conn, generation)
            self._write(conn, self.tables(generation), changes)

    def swap_in(
        self,
        generation: int,
        replaced: int,
        positions: dict[Position, int],
        before_commit: Callable[[], None] | None = None,
    ) -> dict[Position, tuple[int, int]]:
        """Make `generation` live, with the positions its rows were built up to, in ONE transaction: the new
        generation's offset rows and the pointer flip commit together, so the live projector re-seeks exactly there.

        Swaps only if the new generation is at or past the live one on every partition (a reader never sees the view
        go back in time); otherwise changes nothing and returns {position: (shadow, live)} for every partition where
        the shadow is behind. Raises StoreError if the pointer no longer names `replaced`. before_commit (tests) runs
        inside the transaction, with its locks held, right before COMMIT, as apply()'s does."""
        with self.engine.begin() as conn:
            meta = select(projection_meta).where(projection_meta.c.projection == self.spec.name)
            if self._postgres:
                meta = meta.with_for_update()
            row = conn.execute(meta).one_or_none()
            if row is None or row.active_generation != replaced:
                raise StoreError(
                    f"{self.spec.name}: the live generation changed under the replay (expected {replaced}, found "
                    f"{None if row is None else row.active_generation}); nothing was swapped"
                )
            live = self._offsets(conn, replaced, None, lock=True)
            behind = {p: (positions.get(p, 0), o) for p, o in live.items() if positions.get(p, 0) < o}
            if behind:
                return behind
            stored = self._offsets(conn, generation, None)
            rows = [
                {"projection": self.spec.name, "generation": generation, "topic": t, "partition": p,
                 "next_offset": max(o, stored.get((t, p), 0))}
                for (t, p), o in positions.items()
            ]  # fmt: skip
            if rows:
                self._bulk.upsert(conn, projection_offsets, rows)
            conn.execute(
                projection_meta.update()
                .where(projection_meta.c.projection == self.spec.name)
                .values(active_generation=generation, schema_version=self.spec.schema_version)
            )
            if before_commit is not None:
                before_commit()
            return {}

    def _check_shadow(self, conn: Connection, generation: int, *, lock: bool = False) -> None:
        row = self._meta(conn, lock=lock)
        if row is not None and row.active_generation == generation:
            raise StoreError(f"{self.spec.name}: generation {generation} is live; a replay never writes into it")

    # --- verification --------------------------------------------------------------------------------------------

    def dump(self, generation: int | None = None) -> dict[str, list[tuple]]:
        """Every row of every table of a generation (default: the live one), by role, in primary-key order."""
        with self._reading() as conn:
            if generation is None:
                generation = self.active_generation(conn)
            result = {}
            for role, table in self.tables(generation).items():
                order = list(table.primary_key.columns)
                result[role] = [tuple(row) for row in conn.execute(select(table).order_by(*order))]
            return result

    def digests(self, generation: int | None = None) -> dict[str, str]:
        """A SHA-256 of each table's rows (role -> hex): equal digests mean equal tables, on any database."""
        return {
            role: hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
            for role, rows in self.dump(generation).items()
        }
