"""The projections service: the projectors of some views of the registry (views/registry.py), one projector and one
consumer group each, in one process. Each projector runs in two threads: one reads and decodes, the other (its writer)
applies to the database.

`orderstream run projections` runs one such process per view (cli/run.py's plan_processes, which has the measurements),
because a projector's writer waits for the GIL at every SQLite call and the other views' threads hold it.
`run projections --view A --view B` runs A and B in one process (less memory, one process to watch).

Why one consumer (and group) per projection rather than one consumer feeding all of them: each view keeps its own
position in its own database, so each must seek on its own - one shared consumer would have to hold back the fastest
view to the slowest and could not replay one view without the others. Separate groups also make
kafka-consumer-groups show each view's lag by name (<topic prefix>orderstream.projection.<name>).
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
