"""The composition root: every runnable service and projector by name, wired from the settings.

A Service runs until its stop event is set, then returns after finishing or aborting its open transaction and
closing its clients. Heavy modules are imported only when a service is built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from orderstream.config import Settings


class Service(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None:
        """Process until stop is set. Raises on a fatal error (never swallows one)."""


def _order(settings: Settings) -> Service:
    from orderstream.services.order_service import build_order_service

    return build_order_service(settings)


def _inventory(settings: Settings) -> Service:
    from orderstream.services.inventory_service import build_inventory_service

    return build_inventory_service(settings)


def _payment(settings: Settings) -> Service:
    from orderstream.services.payment_service import build_payment_service

    return build_payment_service(settings)


def _shipping(settings: Settings) -> Service:
    from orderstream.services.shipping_service import build_shipping_service

    return build_shipping_service(settings)


def _projections(settings: Settings) -> Service:
    from orderstream.services.projections import build_projections

    return build_projections(settings)


# name -> builder. `orderstream run all` runs every entry, each in its own process (and `projections` one per view:
# cli/run.py's plan_processes).
SERVICES: dict[str, Callable[[Settings], Service]] = {
    "order": _order,
    "payment": _payment,
    "shipping": _shipping,
    "inventory": _inventory,
    "projections": _projections,
}


class UnknownService(ValueError):
    pass


def build_service(name: str, settings: Settings, views: tuple[str, ...] = ()) -> Service:
    """The named service; for `projections`, `views` names the views whose projectors it runs (default: all)."""
    try:
        builder = SERVICES[name]
    except KeyError:
        raise UnknownService(f"unknown service {name!r}; choose from: all, {', '.join(SERVICES)}") from None
    if views:
        if name != "projections":
            raise UnknownService(f"service {name!r} has no views; only `projections` runs views")
        from orderstream.services.projections import build_projections

        return build_projections(settings, views)
    return builder(settings)


def watched_consumers(settings: Settings) -> list:
    """Every consumer `orderstream status` reports on: the services' groups and each projection's stored positions."""
    from orderstream.ops.status import WatchedConsumer
    from orderstream.runtime.projector import group_id_of
    from orderstream.services.order_service import INPUT_TOPICS as ORDER_INPUTS
    from orderstream.services.order_service import group_of as order_group
    from orderstream.views.registry import ALL_SPECS
    from orderstream.views.store import NotInitialized, ProjectionStore, database_exists

    watched = [WatchedConsumer("order", "service", order_group(settings), tuple(ORDER_INPUTS))]
    watched += _inventory_consumers(settings, WatchedConsumer)
    watched += _payment_and_shipping_consumers(settings, WatchedConsumer)
    for name, spec in ALL_SPECS.items():
        url = settings.database_url_for(name)

        def stored(url=url, spec=spec):
            if not database_exists(url):
                return {}
            store = ProjectionStore(url, spec)
            try:
                return store.next_offsets()
            except NotInitialized:  # its projector has not created its tables yet: it has applied nothing
                return {}
            finally:
                store.dispose()

        watched.append(
            WatchedConsumer(name, "projection", group_id_of(name, settings.topic_prefix), spec.topics, stored)
        )
    return watched


def _inventory_consumers(settings: Settings, watched_consumer) -> list:
    from orderstream.services import inventory_service as inv

    return [
        watched_consumer("inventory-orders", "service", inv.order_stage_group(settings), inv.ORDER_STAGE_INPUTS),
        watched_consumer("inventory-stock", "service", inv.sku_stage_group(settings), inv.SKU_STAGE_INPUTS),
    ]


def _payment_and_shipping_consumers(settings: Settings, watched_consumer) -> list:
    from orderstream.services import payment_service as pay
    from orderstream.services import shipping_service as ship

    return [
        watched_consumer("payment-orders", "service", pay.order_stage_group(settings), pay.ORDER_STAGE_INPUTS),
        watched_consumer("payment-customers", "service", pay.customer_stage_group(settings), pay.CUSTOMER_STAGE_INPUTS),
        watched_consumer("shipping", "service", ship.group_of(settings), ship.INPUT_TOPICS),
    ]
