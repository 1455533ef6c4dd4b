"""What a view module declares about itself (its ProjectionSpec), and how it is rebuilt from a time on (ReplayScope).

Every view module (order_view.py, customer_view.py, ...) ends with `SPEC = ProjectionSpec(...)`: its name, schema
version, topics, tables, fold and replay scope, next to the code they name. registry.py collects the specs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Executable

from orderstream.domain.events import Event
from orderstream.views.base import RowChanges, StateRows
from orderstream.views.tables import TableSet

# rows(statement, params): the statement's rows, as tuples in its columns' order (ViewReader.point_reading)
Rows = Callable[[Executable, dict[str, Any]], list[Sequence[Any]]]


class ViewReader(Protocol):
    """What a view's queries read through (queries.ReadModel): one read transaction on the live generation."""

    def reading(self) -> AbstractContextManager[tuple[Connection, TableSet]]: ...

    def point_reading(self) -> AbstractContextManager[tuple[Rows, TableSet]]:
        """The same transaction for a few statements by key, run as rows(statement, params) -> tuples."""
        ...


@dataclass(frozen=True, slots=True)
class ReplayScope:
    """How a projection is rebuilt from a time on (replay_scope.py): `keyed` maps each per-aggregate table role to its
    aggregate-id column (copied row by row); `totals` recomputes the aggregate roles from copied state rows (None: no
    such roles)."""

    keyed: Mapping[str, str]
    totals: Callable[[Iterable[Mapping[str, Any]]], RowChanges] | None = None


BulkChanges = list[tuple[str, str, list[tuple]]]
"""A batch's rows as a bulk fold writes them: (role, kind, rows as tuples in the table's column order), written in
list order; a role may appear once per kind. Kinds: "append" (rows whose keys the table cannot hold yet: plain INSERT,
COPY straight into the table on PostgreSQL) and "upsert" (insert or replace the row with the same primary key)."""


@dataclass(frozen=True, slots=True)
class BulkForm:
    """A view's bulk fold, next to its incremental one: the same rows from the same (events, current state rows), as
    tuples a database driver binds in C instead of row dicts, and split into rows only ever appended and rows
    replaced. It must raise ProjectionError exactly where follow_versions and project() do (the store runs
    follow_versions first unless follows_versions says the fold does it in its own pass). tests/integration/
    test_bulk_*.py check that the two folds, and any switch from one to the other at any offset, produce identical
    tables."""

    fold: Callable[[Sequence[Event], StateRows], BulkChanges | RowChanges]
    # True: fold takes the batch as it comes and applies the poison policy itself (base.follow_versions: repeats left
    # out, a gap refused, or allowed where the spec says version_gaps) in its own pass over the events, so the store
    # does not make that pass first
    follows_versions: bool = False


@dataclass(frozen=True, slots=True)
class ProjectionSpec:
    """Everything the store, the projector and a replay need to run one projection.

    schema_version changes whenever the tables or the meaning of project() change: a database built by another
    version is refused until it is rebuilt.
    state_role names the table holding one state row per aggregate id of the projected events (order id, SKU): what
    project() receives as `current`.
    """

    name: str
    schema_version: int
    topics: tuple[str, ...]
    state_role: str
    tables: Callable[[int], TableSet]
    project: Callable[[Sequence[Event], StateRows], RowChanges]
    replay_scope: ReplayScope | None = None  # None: `replay projection --from-time` refuses it (rebuild it whole)
    bulk: BulkForm | None = None  # None: rebuilds and far-behind batches use project() too
    # True: the events' versions only increase per aggregate id, with gaps (payments.events: a payment event's version
    # is its place in the customer's ledger, keyed by order id); repeats are still left out.
    version_gaps: bool = False
