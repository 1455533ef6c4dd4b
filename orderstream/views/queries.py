"""The read side of the projections: ReadModel, the read-only handle every query of a view module takes (order_view.
order_detail, sales_view.sales, ...). Nothing else reads the views' tables.

Every query resolves the live generation through the pointer and checks the schema version first (ReadModel.reading),
binds every value as a parameter, and takes sort columns only from an allow-list.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from orderstream.views.base import QueryError
from orderstream.views.registry import spec_of
from orderstream.views.store import NotInitialized, ProjectionStore, database_exists
from orderstream.views.tables import TableSet

__all__ = ["QueryError", "ReadModel"]


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
