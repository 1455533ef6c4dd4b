"""What a view module declares about itself (its ProjectionSpec), and how it is rebuilt from a time on (ReplayScope).

Every view module (order_view.py, customer_view.py, ...) ends with `SPEC = ProjectionSpec(...)`: its name, schema
version, topics, tables, fold and replay scope, next to the code they name. registry.py collects the specs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from orderstream.domain.events import Event
from orderstream.views.base import RowChanges, StateRows
from orderstream.views.tables import TableSet


class ViewReader(Protocol):
    """What a view's queries read through (queries.ReadModel): one read transaction on the live generation."""

    def reading(self) -> AbstractContextManager[tuple[Connection, TableSet]]: ...


@dataclass(frozen=True, slots=True)
class ReplayScope:
    """How a projection is rebuilt from a time on (replay_scope.py): `keyed` maps each per-aggregate table role to its
    aggregate-id column (copied row by row); `totals` recomputes the aggregate roles from copied state rows (None: no
    such roles)."""

    keyed: Mapping[str, str]
    totals: Callable[[Iterable[Mapping[str, Any]]], RowChanges] | None = None


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
    # True: the events' versions only increase per aggregate id, with gaps (payments.events: a payment event's version
    # is its place in the customer's ledger, keyed by order id); repeats are still left out.
    version_gaps: bool = False
