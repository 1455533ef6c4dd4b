"""`orderstream run projections`: order-view, customer-view, sales-view and stock-view, one projector and one consumer
group each. Each projector runs in two threads: one reads and decodes, the other (its writer) applies to the database.

Why one consumer (and group) per projection rather than one consumer feeding all four: each view keeps its own
position in its own database, so each must seek on its own - one shared consumer would have to hold back the fastest
view to the slowest and could not replay one view without the others. Separate groups also make
kafka-consumer-groups show each view's lag by name (<topic prefix>orderstream.projection.<name>). Threads suffice: librdkafka
and the database drivers release the GIL while they wait, and the fold itself is small.
"""

from __future__ import annotations

import logging
import threading

from orderstream.config import Settings

log = logging.getLogger(__name__)

RUN_BY_DEFAULT = ("order-view", "customer-view", "sales-view", "stock-view")


class ProjectionFailed(RuntimeError):
    """One projection stopped with an error; the others were stopped too."""


class ProjectionsService:
    """Runs several projectors until stop is set. If one fails, all stop and run() raises ProjectionFailed."""

    name = "projections"

    def __init__(self, projectors) -> None:
        self.projectors = list(projectors)

    def run(self, stop: threading.Event) -> None:
        halt = threading.Event()
        errors: list[tuple[str, BaseException]] = []

        def work(projector) -> None:
            try:
                projector.run(halt)
            except BaseException as exc:  # reported below, after every thread has stopped
                log.error("%s failed: %s", projector.name, exc)
                errors.append((projector.name, exc))
                halt.set()

        threads = [threading.Thread(target=work, args=(p,), name=p.name, daemon=True) for p in self.projectors]
        for thread in threads:
            thread.start()
        while not stop.is_set() and not halt.is_set():
            stop.wait(0.2)
        halt.set()
        for thread in threads:
            thread.join()
        if errors:
            name, first = errors[0]
            raise ProjectionFailed(f"projection {name} stopped: {first}") from first


def build_projections(settings: Settings, names: tuple[str, ...] = RUN_BY_DEFAULT) -> ProjectionsService:
    from orderstream.runtime.projector import Projector
    from orderstream.views.registry import spec_of

    return ProjectionsService(Projector(settings, spec_of(name)) for name in names)
