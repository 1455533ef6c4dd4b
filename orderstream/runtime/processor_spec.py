"""What a service plugs into the processor runtime (runtime/processor.py): its ProcessorSpec, the ProcessorLogic of
its domain, what handling one input returns (Outcome, Output) and the dead-letter hook of its inputs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from orderstream.kafka.dead_letters import dead_letter
from orderstream.runtime.state import KeyState

log = logging.getLogger(__name__)

S = TypeVar("S")


class ProcessorError(RuntimeError):
    """The processor cannot go on: a fatal consumer error, a fatal error reading its changelog, a state rebuild over
    300 s, a transaction it cannot flush or abort, repeated fatal producer errors, or a failed input record when the
    dead-letter hook is stop_on_undecodable (the default hook dead-letters it and carries on). The open transaction
    was aborted: nothing of the failing batch is visible or committed."""


@dataclass(frozen=True, slots=True)
class Output:
    """A record to produce. topic is the logical name (the runtime adds the topic prefix); partition None lets the
    partitioner (murmur2_random, keyed) choose."""

    topic: str
    key: str
    value: Any
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling one input does: changelog events for the input's key, other records, a reply.

    `reply` is called after the batch's flush, so the Handled entries of the key (keyed by causation id) know their
    offsets by then."""

    events: Sequence[Any] = ()
    outputs: Sequence[Output] = ()
    reply: Callable[[], Output] | None = None


@dataclass(frozen=True, slots=True)
class HandleContext:
    now: datetime
    topic: str  # logical input topic
    partition: int
    offset: int
    key: str


class ProcessorLogic(Protocol[S]):
    """A service's domain wiring. handle() must be pure apart from reading the clock it is given."""

    def initial(self, key: str) -> S: ...

    def evolve(self, state: S, event: Any) -> S: ...

    def handle(self, message: Any, state: KeyState[S], context: HandleContext) -> Outcome: ...


# (record, error, stage, group) -> what to produce in the batch's transaction instead of handling the record:
# kafka.dead_letters.DeadLetter records (raw bytes, unchanged) or Outputs. Raising stops the processor instead.
DeadLetterHook = Callable[[Any, Exception, str, str], Sequence[Any]]


def to_dead_letter_topic(record: Any, error: Exception, stage: str, group: str) -> Sequence[Any]:
    """The default hook: the record goes to <topic>.dlq, unchanged, in the same transaction as the batch (so it is
    dead-lettered exactly once), and processing continues with the next record. See orderstream.kafka.dead_letters."""
    log.error(
        "%s[%d]@%d failed at %s (%s: %s): sent to the dead-letter topic",
        record.topic(),
        record.partition(),
        record.offset(),
        stage,
        type(error).__name__,
        error,
    )
    return [dead_letter(record, group, stage, error)]


def stop_on_undecodable(record: Any, error: Exception, stage: str, group: str) -> Sequence[Any]:
    """A hook that stops the loop instead, naming the record (for services that must never skip anything)."""
    raise ProcessorError(
        f"{record.topic()}[{record.partition()}]@{record.offset()} failed at {stage}: {error}; stopping (no DLQ)"
    )


@dataclass
class ProcessorSpec(Generic[S]):
    """Everything that makes one service a processor."""

    name: str
    group_id: str
    input_topics: tuple[str, ...]  # logical names
    changelog_topic: str  # logical name
    logic: ProcessorLogic[S]
    transactional_id: str
    state_dir: Path | None  # None: no on-disk cache
    source: str  # CloudEvents source of what it produces
    dead_letter: DeadLetterHook = to_dead_letter_topic
    consumer_overrides: dict[str, Any] = field(default_factory=dict)
    producer_overrides: dict[str, Any] = field(default_factory=dict)
    # makes the transactional producer from its librdkafka configuration (None: confluent_kafka.Producer); a test seam
    producer_factory: Callable[[dict[str, Any]], Any] | None = None
    checkpoint_interval_s: float = 30.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    service: str = ""  # the service the stage belongs to (metrics and spans say so); "" = its name
