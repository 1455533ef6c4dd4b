"""Restoring a processor's state from its changelog, and what the restore does with a record that does not fit.

The changelog (the processor's own output topic) is the truth: the state of partition p is the fold of changelog
partition p. A restore starts from the cached (or in-memory) state and replays the changelog up to its last stable
offset. Each record is judged by the policy every read path follows (docs/ARCHITECTURE.md, "Dead letters"):
- applied: it decodes and follows its key's state (the logic's evolve takes it);
- repeated: its version is at or below the version the key is at (a copy written back, e.g. by `replay topic
  --force`): ignored, it is in the state already;
- poisoned: no key, cannot be decoded, or does not follow the key's state (evolve refuses it: a version gap, an
  impossible transition): skipped, and dead-lettered once for the processor's group.
"Once": the restore's own reader group (<group>.restore, never joined, only used to store offsets) holds per
changelog partition the offset up to which the changelog was screened. The processor commits that offset in the same
Kafka transaction as the dead letters (Processor, send_offsets_to_transaction), so a later restore (a restart, a
rebalance, a deleted cache, a second instance) skips the poisoned records below it without writing them again. A
record that does not follow a state that came from the cache (rather than from the log) means the cache is wrong:
that partition is folded again from its first record instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from orderstream.config import Settings
from orderstream.kafka.clients import consumer_config, is_fatal
from orderstream.kafka.offsets import watermarks
from orderstream.runtime.checkpoints import CheckpointCache
from orderstream.runtime.processor_spec import ProcessorError, ProcessorLogic
from orderstream.runtime.state import Handled, KeyState, PartitionState
from orderstream.schemas.errors import DecodeError

log = logging.getLogger(__name__)

KAFKA_TIMEOUT_S = 30.0
RESTORE_TIMEOUT_S = 300.0


class EvolveFailed(RuntimeError):
    """A changelog record does not apply to the state restored so far."""


@dataclass(frozen=True)
class Poisoned:
    """A changelog record the restore skipped that the processor's group has not dead-lettered yet."""

    record: Any  # the confluent_kafka Message, raw bytes unchanged
    error: Exception
    stage: str  # decode, validate or apply (kafka.dead_letters.STAGES)


@dataclass
class Restored:
    """What one restore did. `poisoned` must be dead-lettered in one transaction with `screened` committed for
    `group_metadata` (the reader group's); `already_dead_lettered` counts records skipped without a new letter."""

    replayed: int = 0
    repeated: int = 0
    already_dead_lettered: int = 0
    poisoned: list[Poisoned] = field(default_factory=list)
    screened: dict[int, int] = field(default_factory=dict)  # changelog partition -> screened up to (exclusive)
    group_metadata: Any = None


class ChangelogRestore:
    """Brings partition states up to the changelog's last stable offset. Guarantees: the state after restore() is
    the fold of the changelog's applied records (whatever the cache held), it never produces anything itself, and
    it returns each poisoned record at or past the screened offset exactly once per call."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        group_id: str,
        changelog: str,
        logic: ProcessorLogic[Any],
        cache: CheckpointCache,
    ) -> None:
        self.settings = settings
        self.name = name
        self.group_id = f"{group_id}.restore"
        self.changelog = changelog
        self.logic = logic
        self.cache = cache

    def restore(self, states: dict[int, PartitionState], partitions: set[int], codec: Any) -> Restored:
        """Restore these partitions into `states` (changed in place: a partition's entry may be replaced), decoding
        the changelog with `codec` (the processor's, resolved when it runs: in registry mode it waits for the
        registry)."""
        reader = Consumer(consumer_config(self.settings, self.group_id))
        done = Restored()
        try:
            marks = self._screened_marks(reader, partitions)
            ends: dict[int, int] = {}
            starts = []
            kept: set[int] = set()  # partitions replayed on top of a cached (or in-memory) state, not from scratch
            for number in partitions:
                state = states.get(number)
                if state is None:
                    state = self.cache.load(number)
                low, end = watermarks(reader, self.changelog, number, KAFKA_TIMEOUT_S)
                if state is None or not low <= state.next_offset <= end:
                    if state is not None:
                        log.warning(
                            "%s: cached state of partition %d is at %d, outside the changelog's %d..%d; rebuilding",
                            self.name,
                            number,
                            state.next_offset,
                            low,
                            end,
                        )
                    state = PartitionState(number, next_offset=0)
                states[number] = state
                if state.keys:
                    kept.add(number)
                if state.next_offset < end:
                    ends[number] = end
                    start = state.next_offset if state.next_offset > 0 else OFFSET_BEGINNING
                    starts.append(TopicPartition(self.changelog, number, start))
            if not starts:
                return done
            done.group_metadata = reader.consumer_group_metadata()
            reader.assign(starts)
            deadline = time.monotonic() + RESTORE_TIMEOUT_S
            while ends:
                if time.monotonic() > deadline:
                    raise ProcessorError(f"{self.name}: rebuilding state from {self.changelog} took over 300s")
                restarted: set[int] = set()
                for record in reader.consume(1000, 0.5):
                    if record.error():
                        if is_fatal(record.error()):
                            raise ProcessorError(f"{self.name}: fatal error reading {self.changelog}: {record.error()}")
                        continue
                    number = record.partition()
                    if number in restarted:
                        continue  # read before the seek back to the start
                    try:
                        self._fold(codec, states[number], record, marks.get(number, 0), done, number in kept)
                    except EvolveFailed as failed:
                        self._rebuild_from_start(reader, states, number, failed, done)
                        kept.discard(number)
                        restarted.add(number)
                for tp in reader.position([TopicPartition(self.changelog, n) for n in list(ends)]):
                    if tp.offset >= ends[tp.partition]:
                        end = ends.pop(tp.partition)
                        states[tp.partition].next_offset = end
                        done.screened[tp.partition] = max(end, marks.get(tp.partition, 0))
            return done
        finally:
            reader.close()

    def _screened_marks(self, reader: Any, partitions: set[int]) -> dict[int, int]:
        """Per partition, the changelog offset below which poisoned records were dead-lettered already. read_committed
        asks for stable offsets: a transaction still carrying letters and a mark (a zombie's) is resolved first."""
        asked = [TopicPartition(self.changelog, n) for n in sorted(partitions)]
        return {tp.partition: max(tp.offset, 0) for tp in reader.committed(asked, timeout=KAFKA_TIMEOUT_S)}

    def _fold(self, codec: Any, state: PartitionState, record: Any, mark: int, done: Restored, kept: bool) -> None:
        """Judge one changelog record and fold it into its key's state when it is applied. kept: the state came from
        the cache or memory, so a record that does not follow it raises EvolveFailed (the cache is wrong)."""
        state.next_offset = record.offset() + 1
        if record.key() is None:
            self._poisoned(record, ValueError("the record has no key"), "validate", mark, done)
            return
        try:
            event = codec.decode(record.value())
        except DecodeError as exc:
            self._poisoned(record, exc, "decode", mark, done)
            return
        key = record.key().decode("utf-8", errors="replace")
        current = state.keys.get(key)
        fresh = current is None
        if current is None:
            current = KeyState(self.logic.initial(key))
        version = getattr(event, "version", None)
        if isinstance(version, int) and version <= current.version:
            done.repeated += 1
            log.info(
                "%s: %s[%d]@%d repeats version %d of key %s (at %d): ignored",
                self.name,
                record.topic(),
                record.partition(),
                record.offset(),
                version,
                key,
                current.version,
            )
            return
        try:
            value = self.logic.evolve(current.value, event)
        except Exception as exc:  # judged by the policy below, never swallowed
            if kept:
                raise EvolveFailed(
                    f"{self.name}: changelog record {record.topic()}[{record.partition()}]@{record.offset()} does "
                    f"not follow the state of key {key}: {type(exc).__name__}: {exc}"
                ) from exc
            self._poisoned(record, exc, "apply", mark, done)
            return
        if fresh:
            state.keys[key] = current
        current.value = value
        if isinstance(version, int):
            current.version = version
        current.handled[event.causation_id] = Handled(
            event.version, record.partition(), record.offset(), event.occurred_at
        )
        state.changed.add(key)
        done.replayed += 1

    def _poisoned(self, record: Any, error: Exception, stage: str, mark: int, done: Restored) -> None:
        where = f"{record.topic()}[{record.partition()}]@{record.offset()}"
        if record.offset() < mark:
            done.already_dead_lettered += 1
            log.warning(
                "%s: changelog record %s skipped (%s at %s; dead-lettered before)", self.name, where, error, stage
            )
            return
        log.error("%s: changelog record %s skipped (%s at %s): dead-lettering it", self.name, where, error, stage)
        done.poisoned.append(Poisoned(record, error, stage))

    def _rebuild_from_start(
        self, reader: Any, states: dict[int, PartitionState], number: int, failed: Exception, done: Restored
    ) -> None:
        """The changelog does not continue the cached state of a partition (the cache is not what its offset says):
        the log is the truth, so forget the cache and fold the partition again from its first record."""
        log.warning(
            "%s: %s - the cached state of partition %d does not match the changelog; rebuilding it from the start",
            self.name,
            failed,
            number,
        )
        states[number] = PartitionState(number, next_offset=0)
        done.poisoned = [p for p in done.poisoned if p.record.partition() != number]  # found again on the way
        reader.seek(TopicPartition(self.changelog, number, OFFSET_BEGINNING))
