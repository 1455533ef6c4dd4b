"""The read side of the projections: ReadModel, the read-only handle every query of a view module takes (order_view.
order_detail, sales_view.sales, ...). Nothing else reads the views' tables.

Every query resolves the live generation through the pointer and checks the schema version first (ReadModel.reading,
or point_reading for a read by key), binds every value as a parameter, and takes sort columns only from an allow-list.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, select

from orderstream.telemetry import tracing
from orderstream.views.base import QueryError
from orderstream.views.registry import spec_of
from orderstream.views.spec import Rows
from orderstream.views.store import NotInitialized, ProjectionStore, database_exists
from orderstream.views.tables import TableSet, projection_meta

__all__ = ["QueryError", "ReadModel", "Rows"]

_POINTER = select(projection_meta.c.schema_version, projection_meta.c.active_generation).where(
    projection_meta.c.projection == bindparam("projection")
)
_COMPILED_KEPT = 64  # statements one ReadModel runs directly (a few per query, per generation); past it, start again


class ReadModel:
    """Read-only access to one projection's live generation. Never creates a database: a projection that never ran
    raises NotInitialized; one built by another schema version raises SchemaMismatch."""

    def __init__(self, url: str, projection: str) -> None:
        spec = spec_of(projection)
        if not database_exists(url):
            raise NotInitialized(f"{projection} has no database yet ({url}): run `orderstream run projections` first")
        self.store = ProjectionStore(url, spec)
        # A SQLite file on this machine: a point read (one key through an index) costs a fraction of a millisecond
        # of CPU and waits on no network, so an event loop may run it in place (see api.context.ReadModels).
        self.local = self.store.engine.dialect.name == "sqlite"
        # point_reading() runs its statements on the DBAPI connection itself: on SQLite, unless its SQL spans (made
        # through SQLAlchemy's engine events) are wanted
        self._direct = self.local and tracing.provider() is None
        self._compiled: dict[Executable, tuple[str, tuple[str, ...]]] = {}

    @contextmanager
    def reading(self) -> Iterator[tuple[Connection, TableSet]]:
        """One read transaction on the live generation's tables: the pointer and every row it reads come from one
        snapshot (SQLite: a WAL read transaction; PostgreSQL: REPEATABLE READ, as READ COMMITTED would let an order's
        summary and its timeline come from different batches, or the pointer from before a swap)."""
        conn = self.store.engine.connect()
        if self.store.engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            yield conn, self.store.tables(self.store.active_generation(conn))

    @contextmanager
    def point_reading(self) -> Iterator[tuple[Rows, TableSet]]:
        """reading() for a few statements by key (an order, its returns), as rows(statement, params). On a SQLite
        file they run on the DBAPI connection, each statement compiled once: SQLAlchemy's execution of a statement
        (its context, its result, the BEGIN event) cost three times the SQLite work of GET /orders/{id}'s read (an
        order and its returns on a view of 1,000,000 orders, in process: 190 us -> 50 us per read, mean). Same
        transaction as reading(): BEGIN, the pointer and the schema version, the statements, then its end."""
        if not self._direct:
            with self.reading() as (conn, tables):
                yield (lambda statement, params: conn.execute(statement, params).all()), tables
            return
        raw = self.store.engine.raw_connection()  # from the engine's pool, as reading()'s connection is
        try:
            connection = raw.driver_connection
            connection.execute("BEGIN")
            try:

                def rows(statement: Executable, params: dict[str, Any]) -> list[Sequence[Any]]:
                    sql, names = self._compile(statement)
                    return connection.execute(sql, [params[name] for name in names]).fetchall()

                try:
                    pointer = rows(_POINTER, {"projection": self.store.spec.name})
                except sqlite3.OperationalError as exc:  # no bookkeeping table yet: the projector is starting
                    raise self.store.not_started() from exc
                generation = self.store.live_generation(pointer[0] if pointer else None)
                yield rows, self.store.tables(generation)
            finally:
                if connection.in_transaction:  # a read: ending it changes nothing
                    connection.execute("ROLLBACK")
        finally:
            raw.close()

    def _compile(self, statement: Executable) -> tuple[str, tuple[str, ...]]:
        """The statement's SQL for this engine's dialect and its parameters' names in placeholder order."""
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) >= _COMPILED_KEPT:
                self._compiled.clear()
            sql = statement.compile(dialect=self.store.engine.dialect)
            compiled = self._compiled[statement] = (str(sql), tuple(sql.positiontup or ()))
        return compiled

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The live generation's stored next offset for a partition (None: nothing applied from it yet)."""
        return self.store.next_offsets().get((topic, partition))

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """The live generation's stored next offset of every (topic, partition) it has applied events from."""
        return self.store.next_offsets()

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> ReadModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
