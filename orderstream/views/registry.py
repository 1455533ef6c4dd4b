"""The registry of views, built from the view modules: adding a view is one new module and one line in VIEWS.

No other module keeps a list of view names: `run projections`, status, replay and the queries all ask here.
"""

from __future__ import annotations

from orderstream.topology import ORDERS_EVENTS
from orderstream.views import customer_view, order_view, payment_view, sales_view, stock_view
from orderstream.views.spec import ProjectionSpec, ReplayScope

__all__ = ["ALL_SPECS", "SPECS", "VIEWS", "ProjectionSpec", "ReplayScope", "spec_of"]

VIEWS = (order_view, customer_view, sales_view, stock_view, payment_view)

# Every projection, in the order `run projections` starts them and `status` lists them.
ALL_SPECS: dict[str, ProjectionSpec] = {view.SPEC.name: view.SPEC for view in VIEWS}
# The views of orders.events alone (folded together, compared against one reference fold of the order log).
SPECS: dict[str, ProjectionSpec] = {name: spec for name, spec in ALL_SPECS.items() if spec.topics == (ORDERS_EVENTS,)}


def spec_of(name: str) -> ProjectionSpec:
    try:
        return ALL_SPECS[name]
    except KeyError:
        raise KeyError(f"unknown projection {name!r}; choose from: {', '.join(ALL_SPECS)}") from None
