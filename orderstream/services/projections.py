"""`orderstream run projections`: every view of the registry (views/registry.py), one projector and one consumer group
each. Each projector runs in two threads: one reads and decodes, the other (its writer) applies to the database.

Why one consumer (and group) per projection rather than one consumer feeding all four: each view keeps its own
position in its own database, so each must seek on its own - one shared consumer would have to hold back the fastest
view to the slowest and could not replay one view without the others. Separate groups also make
kafka-consumer-groups show each view's lag by name (<topic prefix>orderstream.projection.<name>). Threads suffice:
librdkafka and the database drivers release the GIL while they wait, and the fold itself is small.
"""

from __future__ import annotations

import threading

from orderstream.config import Settings
from orderstream.runtime.projector import Projector
from orderstream.runtime.stages import run_stages
from orderstream.views.registry import ALL_SPECS, spec_of


class ProjectionsService:
    """Runs several projectors until stop is set. If one fails, all stop and run() raises StageFailed (the first
    error as its cause): the supervision is runtime.stages.run_stages, the same as every service's stages."""

    name = "projections"

    def __init__(self, projectors) -> None:
        self.projectors = list(projectors)

    def run(self, stop: threading.Event) -> None:
        run_stages(self.projectors, stop)


def build_projections(settings: Settings, names: tuple[str, ...] | None = None) -> ProjectionsService:
    """The projectors of the named views (default: every view of the registry)."""
    return ProjectionsService(Projector(settings, spec_of(name)) for name in (names or tuple(ALL_SPECS)))
