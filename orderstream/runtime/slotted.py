"""A service as data: its stages (one Processor each) and one stable instance slot shared by all of them.

Every deciding service (order, shipping, inventory, payment) is built the same way: claim the lowest free instance
slot in <data_dir>/state/<service> (runtime/instances.py), give each stage's processor the transactional.id
"<group>-<slot>" (so a restarted instance gets its ids back and fences what the killed one left open), run the
processors until stop is set, then release the slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from orderstream.config import Settings
from orderstream.runtime.instances import claim_slot
from orderstream.runtime.processor import Processor, ProcessorLogic, ProcessorSpec
from orderstream.runtime.stages import run_stages

S = TypeVar("S")


@dataclass(frozen=True)
class Stage(Generic[S]):
    """One processor of a service: what it reads, the changelog it writes, and the logic deciding in between."""

    service: str  # the service it belongs to; its state cache lives in <data_dir>/state/<service>/slot-<n>
    source: str  # CloudEvents source of what it produces
    name: str  # the processor's name
    group: Callable[[Settings], str]  # its consumer group (with the topic prefix)
    input_topics: tuple[str, ...]
    changelog_topic: str
    logic: Callable[[Settings], ProcessorLogic[S]]

    def spec(self, settings: Settings, transactional_id: str, **overrides: Any) -> ProcessorSpec[S]:
        """The ProcessorSpec of this stage; overrides replace any of its fields (tests: checkpoint interval, clock)."""
        values: dict[str, Any] = {
            "name": self.name,
            "group_id": self.group(settings),
            "input_topics": self.input_topics,
            "changelog_topic": self.changelog_topic,
            "logic": self.logic(settings),
            "transactional_id": transactional_id,
            "state_dir": settings.data_dir / "state" / self.service,
            "source": self.source,
            "service": self.service,
        }
        return ProcessorSpec(**(values | overrides))

    def slot_spec(self, settings: Settings, slot: int, **overrides: Any) -> ProcessorSpec[S]:
        """The spec of the stage run by instance slot `slot`: its transactional.id is "<group>-<slot>" and its state
        cache is the slot's own (<data_dir>/state/<service>/slot-<slot>). Instances on one host share the data
        directory; had they shared cache files too, an instance that lost a partition (a long pause) could append
        its older state on top of the new owner's, and the merged file would claim an offset its keys do not match.
        The slot is held for the process's life, so each cache file has one writer at a time."""
        state_dir = settings.data_dir / "state" / self.service / f"slot-{slot}"
        return self.spec(settings, f"{self.group(settings)}-{slot}", **({"state_dir": state_dir} | overrides))


class SlottedService:
    """`orderstream run <name>`: the service's stages, one Processor each, sharing one instance slot.

    One stage runs in the caller's thread. Several run in threads of their own (runtime/stages.py): if either
    fails, all stop and run() raises StageFailed (the first error as its cause)."""

    name: ClassVar[str]  # also the instance-slot directory: <data_dir>/state/<name>
    stages: ClassVar[Mapping[str, Stage[Any]]]  # key in `processors` -> stage

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.settings = settings
        self.overrides = overrides  # ProcessorSpec fields applied to every stage (tests: checkpoint interval, clock)
        self.processors: dict[str, Processor[Any]] = {}

    @property
    def processor(self) -> Processor[Any] | None:
        """The processor of a one-stage service (None until run() has built it)."""
        if len(self.stages) != 1:
            raise AttributeError(f"the {self.name} service has {len(self.stages)} processors: see .processors")
        return next(iter(self.processors.values()), None)

    def run(self, stop: threading.Event) -> None:

        slot = claim_slot(self.settings.data_dir / "state" / self.name)
        try:
            self.processors = {
                key: Processor(self.settings, stage.slot_spec(self.settings, slot.number, **self.overrides))
                for key, stage in self.stages.items()
            }
            if len(self.processors) == 1:
                next(iter(self.processors.values())).run(stop)
            else:
                run_stages(list(self.processors.values()), stop)
        finally:
            slot.release()
