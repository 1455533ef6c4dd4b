"""Each projection's spec: its name, schema version, topics, tables and pure project function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orderstream.domain.events import Event
from orderstream.topology import ORDERS_EVENTS
from orderstream.views import customer_view, order_view, sales_view, stock_view
from orderstream.views.base import RowChanges, StateRows
from orderstream.views.tables import TABLES, TableSet


@dataclass(frozen=True, slots=True)
class ProjectionSpec:
    """Everything the store and the projector need to run one projection.

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


def _spec(module) -> ProjectionSpec:
    return ProjectionSpec(
        name=module.NAME,
        schema_version=module.SCHEMA_VERSION,
        topics=getattr(module, "TOPICS", (ORDERS_EVENTS,)),
        state_role=module.STATE_ROLE,
        tables=TABLES[module.NAME],
        project=module.project,
    )


# The views of orders.events (folded together, compared against one reference fold of the order log).
SPECS: dict[str, ProjectionSpec] = {spec.name: spec for spec in map(_spec, (order_view, customer_view, sales_view))}
# Every projection: the order views and the views of other services' streams.
ALL_SPECS: dict[str, ProjectionSpec] = SPECS | {spec.name: spec for spec in map(_spec, (stock_view,))}


def spec_of(name: str) -> ProjectionSpec:
    try:
        return ALL_SPECS[name]
    except KeyError:
        raise KeyError(f"unknown projection {name!r}; choose from: {', '.join(ALL_SPECS)}") from None
