"""What `replay projection NAME --from-time T` rebuilds, per projection, and the copy of the rest from the live copy.

T is log time: the Kafka timestamp of each record (the moment it was appended; offsets_for_times finds the first
record at or after T in each partition). The unit a projection is rebuilt by is its aggregate (an order, a SKU):

- Rebuilt from the log: every aggregate *born* at or after T, i.e. whose first event (version 1: OrderPlaced for an
  order) sits at or after the start offset of its partition. All its events are applied again.
- Copied from the live generation: every other aggregate's rows, as they are in one consistent snapshot of the live
  generation taken at its stored offsets L. Of such an aggregate's events, those below L are already in the copied
  rows and are skipped (never applied twice); those at or past L are applied as usual.
- Aggregates over many orders (customer totals, daily sales, status counts) are never copied: they are recomputed
  from the copied state rows with the view's own contribution rules, then the replayed events add their deltas.

Each view module says what this means for it (its docstring and its SPEC.replay_scope).

The start offset of a partition is min(first offset at or after T, the live generation's offset) so that a live
projector lagging behind T cannot leave a gap.
"""

from __future__ import annotations

from sqlalchemy import select

from orderstream.views.base import RowChanges
from orderstream.views.spec import ReplayScope
from orderstream.views.store import Position, ProjectionStore, create_engine_for
from orderstream.views.tables import projection_offsets

COPY_CHUNK = 1_000


def copy_live(
    store: ProjectionStore, live: int, target: int, scope: ReplayScope, rebuilt: set[str]
) -> dict[Position, int]:
    """Copy the live generation's rows of every aggregate NOT in `rebuilt` into the shadow generation `target`, from
    one consistent snapshot, and recompute the aggregate roles from the copied state rows. Returns the live offsets
    of that snapshot (L): the copied rows hold exactly the events below them.

    The snapshot is read on its own connection (REPEATABLE READ on PostgreSQL; a WAL read transaction on SQLite), so
    the live projector keeps writing meanwhile; the copy is written in chunks, each its own short transaction."""
    reader = create_engine_for(store.url)
    state_role = store.spec.state_role
    try:
        with reader.connect() as conn:
            if reader.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                o = projection_offsets
                offsets = {
                    (row.topic, row.partition): row.next_offset
                    for row in conn.execute(
                        select(o.c.topic, o.c.partition, o.c.next_offset).where(
                            o.c.projection == store.spec.name, o.c.generation == live
                        )
                    )
                }
                for role, key_column in scope.keyed.items():
                    source, destination = store.tables(live)[role], store.tables(target)[role]
                    keys = [c.name for c in destination.primary_key.columns]
                    result = conn.execution_options(yield_per=COPY_CHUNK).execute(select(source))
                    for part in result.partitions(COPY_CHUNK):
                        rows = [dict(r._mapping) for r in part if r._mapping[key_column] not in rebuilt]
                        changes = RowChanges()
                        for row in rows:
                            changes.upsert(role, tuple(row[k] for k in keys), row)
                        if role == state_role and scope.totals is not None:
                            totals = scope.totals(rows)
                            changes.increments = totals.without_zero_increments().increments
                        if rows:
                            store.write(target, changes)
                return offsets
    finally:
        reader.dispose()
