"""`orderstream replay projection NAME`: rebuild a projection into a shadow generation and swap it in atomically.

The steps, with what each guarantees:
1. Lock: one replay per projection at a time (a PostgreSQL advisory lock, or a file lock next to the SQLite file);
   a killed replay's lock dies with it.
2. Clean up: every generation but the live one is dropped - a half-built one left by an interrupted replay, and the
   one the previous successful replay replaced. Then generation N+1 is created empty next to the live N.
3. Plan: the replay's own consumer ASSIGNS the projection's partitions (no group membership, so the live projector
   sees no rebalance, and it never commits). It starts at the beginning of each partition (--from-beginning) or at
   min(offsets_for_times(T), live offset) (--from-time, see replay_scope.py) and targets the high watermarks (the
   last stable offsets, read_committed) seen at start: the progress bar measures against them.
4. Build: batches are folded into N+1 through ProjectionStore.apply(shadow=True, bulk=True): rows and N+1's offsets
   in one transaction, exactly as the live projector does for N, with the view's bulk fold (spec.bulk: tuples, plain
   INSERT / COPY for rows only ever appended) into tables created without their secondary indexes, which are built
   once, before the swap. Nothing else is written anywhere: no producer exists here.
   A record the live projector dead-letters (it cannot be decoded, or does not follow its aggregate's state: a gap)
   is skipped here the same way, and a repeated version is ignored the same way (views/base.follow_versions), so
   the rebuilt view equals the live one. The replay writes no letter: the live projector's group writes it, once.
5. Swap: once at the targets, ProjectionStore.swap_in writes N+1's offset rows (the positions reached) and flips the
   pointer in ONE transaction - only if N+1 is at or past the live generation on every partition; else the replay
   reads on to the live positions and tries again (up to chase_timeout_s). The live projector's next batch raises
   GenerationChanged and it re-seeks to N+1's offsets. Queries answer from N until that commit, from N+1 after it.
Interrupted anywhere before the swap commits (Ctrl-C, SIGKILL), the live generation is untouched; the next replay
drops the half-built generation and starts cleanly.

A replay builds THIS release's schema version, so it is also how a projection whose schema version changed is
migrated: the old version keeps serving (from the release that built it) until the new one swaps in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

from orderstream import failpoints
from orderstream.config import Settings
from orderstream.runtime.projector import group_id_of
from orderstream.telemetry.rebuild import RebuildProgress
from orderstream.topology import dlq_name
from orderstream.views.base import ProjectionError
from orderstream.views.registry import ProjectionSpec
from orderstream.views.store import Position, ProjectionStore, Record

log = logging.getLogger(__name__)

_LOCK_KEY = 0x7265706C6179  # pg_advisory_lock(key, hash of the projection name) held for the whole replay


class ReplayError(RuntimeError):
    """The replay cannot go on; the live projection is untouched. The message says why and what to do."""


class ReplayInterrupted(ReplayError):
    """The replay was asked to stop before it swapped; the live projection is untouched."""


class ParallelBuild(Protocol):
    """Runs the build phase across worker processes; returns the positions reached
    (replay_workers.build_in_parallel)."""

    def __call__(
        self,
        replay: ProjectionReplay,
        target: int,
        starts: dict[Position, int],
        ends: dict[Position, int],
        rebuilt: set[str] | None,
        copied_up_to: dict[Position, int],
    ) -> dict[Position, int]: ...


class ReplayProgress(Protocol):
    """What the replay reports while it runs (the CLI draws a progress bar from it)."""

    def phase(self, name: str, total: int) -> None:
        """A phase starts ("scan", "copy", "replay", "catch up") with this many offsets to cover (0: unknown)."""

    def advance(self, offsets: int, events: int) -> None:
        """`offsets` more positions covered, `events` of them applied to the shadow generation."""


class _Silent:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, offsets: int, events: int) -> None:
        pass


@dataclass
class ReplayResult:
    """What a finished replay did."""

    projection: str
    generation: int
    replaced: int
    schema_version: int
    events_applied: int
    events_skipped: int
    rebuilt_aggregates: int | None  # --from-time: how many aggregates were rebuilt from the log (None: all of them)
    records_rejected: int = 0  # records skipped as the live projector dead-letters them (undecodable, a gap, ...)
    positions: dict[Position, int] = field(default_factory=dict)
    seconds: float = 0.0


class ProjectionReplay:
    """Rebuilds one projection next to the live one and swaps it in (see the module docstring for the guarantees).

    from_time None = from the beginning of every partition; otherwise only what replay_scope.py defines is rebuilt.
    stop: set it to interrupt (ReplayInterrupted). The replay never produces to Kafka and never commits offsets.
    processes > 1 splits the build phase by partition across that many worker processes: `parallel_build` does it
    (replay_workers.build_in_parallel, passed in so this module does not depend on its own workers; use
    replay_workers.projection_replay() to get one wired).
    """

    def __init__(
        self,
        settings: Settings,
        spec: ProjectionSpec,
        *,
        database_url: str | None = None,
        from_time: datetime | None = None,
        progress: ReplayProgress | None = None,
        stop: threading.Event | None = None,
        chase_timeout_s: float = 60.0,
        processes: int = 1,
        parallel_build: ParallelBuild | None = None,
    ) -> None:
        if processes > 1 and parallel_build is None:
            raise ValueError("processes > 1 needs a parallel_build (replay_workers.projection_replay wires one)")
        self.settings = settings
        self.spec = spec
        self.database_url = database_url or settings.database_url_for(spec.name)
        self.from_time = from_time
        self.progress = RebuildProgress(spec.name, progress or _Silent())  # also the rebuild's progress metrics
        self.stop = stop or threading.Event()
        self.chase_timeout_s = chase_timeout_s
        self.processes = processes
        self.parallel_build = parallel_build
        self.topics = [settings.topic(name) for name in spec.topics]
        # the live projector also reads its topics' DLQ topics for retry requests to its group: so does its rebuild
        self.dead_letter_topics = [settings.topic(dlq_name(name)) for name in spec.topics]
        self.group_id = group_id_of(spec.name, settings.topic_prefix)  # the live projector's group
        self._applied = 0
        self._skipped = 0
        self._rejected = 0

    @property
    def applied(self) -> int:
        """Events applied to the shadow generation so far."""
        return self._applied

    @property
    def skipped(self) -> int:
        """Events skipped so far because the copied rows hold them (--from-time)."""
        return self._skipped

    @property
    def rejected(self) -> int:
        """Records skipped so far because they cannot be projected (the live projector dead-letters them)."""
        return self._rejected

    def count(self, applied: int, skipped: int, rejected: int = 0) -> None:
        """Add what a worker process applied, skipped and rejected (replay_workers.py)."""
        self._applied += applied
        self._skipped += skipped
        self._rejected += rejected

    # --- the whole run -------------------------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        started = time.monotonic()
        store = ProjectionStore(self.database_url, self.spec, writer=True)
        try:
            with _replay_lock(store):
                result = self._run(store)
        finally:
            store.dispose()
        result.seconds = time.monotonic() - started
        return result

    def _run(self, store: ProjectionStore) -> ReplayResult:
        if store.pointer() is None:
            store.ensure()  # never started: an empty live generation 1 to swap against
        stored_version, live = store.pointer()  # type: ignore[misc]
        scope = None
        if self.from_time is not None:
            if stored_version != self.spec.schema_version:
                raise ReplayError(
                    f"{self.spec.name} was built with schema version {stored_version}, this release projects "
                    f"{self.spec.schema_version}: --from-time copies rows from the live copy, which has the old "
                    f"shape; rebuild it whole with `orderstream replay projection {self.spec.name} --from-beginning`"
                )
            scope = self.spec.replay_scope
            if scope is None:
                raise ReplayError(f"{self.spec.name} has no --from-time scope; use --from-beginning")
        for old in sorted(store.generations() - {live}):
            log.info("%s: dropping generation %d (half-built or replaced before)", self.spec.name, old)
            store.drop_generation(old)
        target = live + 1
        store.create_generation(target, defer_indexes=True)  # bulk load first, index once (create_indexes below)
        log.info("%s: building generation %d next to live generation %d", self.spec.name, target, live)

        consumer = self.new_consumer()
        try:
            partitions, ends = self._partitions(consumer)
            starts = dict.fromkeys(partitions, 0)
            rebuilt: set[str] | None = None
            copied_up_to: dict[Position, int] = {}
            if scope is not None:
                starts = self._time_starts(consumer, store, live, partitions, ends)
                rebuilt = self._scan_births(consumer, starts, ends)
                self.progress.phase("copy", 0)
                copied_up_to = _copy(store, live, target, scope, rebuilt)
                log.info("%s: copied the live rows of all but %d aggregates", self.spec.name, len(rebuilt))
            skip = copied_skip(rebuilt, copied_up_to)
            if self.parallel_build is not None and self.processes > 1:
                reached = self.parallel_build(self, target, starts, ends, rebuilt, copied_up_to)
            else:
                reached = self.consume_into(consumer, store, target, starts, ends, skip, "replay")
            store.create_indexes(target)
            reached = self._swap(consumer, store, target, live, reached, skip)
        finally:
            consumer.close()
        return ReplayResult(
            projection=self.spec.name, generation=target, replaced=live, schema_version=self.spec.schema_version,
            events_applied=self._applied, events_skipped=self._skipped,
            rebuilt_aggregates=None if rebuilt is None else len(rebuilt), positions=reached,
            records_rejected=self._rejected,
        )  # fmt: skip

    # --- Kafka ---------------------------------------------------------------------------------------------------

    def new_consumer(self):
        """The replay's consumer: it assigns partitions itself, so its group is never joined and never committed."""
        from confluent_kafka import Consumer

        from orderstream.kafka.clients import consumer_config

        group = f"{self.settings.topic_prefix}orderstream.replay.{self.spec.name}"
        return Consumer(
            consumer_config(self.settings, group, **{"client.id": f"{self.settings.client_id}.replay.{self.spec.name}"})
        )

    def _partitions(self, consumer) -> tuple[list[Position], dict[Position, int]]:
        from confluent_kafka import TopicPartition

        partitions, ends = [], {}
        for topic in (*self.topics, *self.dead_letter_topics):
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            if metadata.error is not None:
                if topic in self.dead_letter_topics:
                    continue  # no DLQ topic: no retry request to read
                raise ReplayError(f"topic {topic} does not exist (run `orderstream topics init`)")
            for partition in sorted(metadata.partitions):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                partitions.append((topic, partition))
                ends[(topic, partition)] = high
        return partitions, ends

    def _time_starts(self, consumer, store, live, partitions, ends) -> dict[Position, int]:
        from confluent_kafka import TopicPartition

        ms = int(self.from_time.timestamp() * 1000)  # type: ignore[union-attr]
        found = consumer.offsets_for_times([TopicPartition(t, p, ms) for t, p in partitions], timeout=10)
        live_offsets = store.next_offsets(live) if self._same_version(store) else {}
        starts = {}
        for tp in found:
            if tp.error is not None:
                raise ReplayError(f"offsets_for_times({tp.topic}:{tp.partition}) failed: {tp.error}")
            position = (tp.topic, tp.partition)
            at_time = tp.offset if tp.offset >= 0 else ends[position]  # -1: no record at or after T
            starts[position] = min(at_time, live_offsets.get(position, 0))
        return starts

    def _same_version(self, store) -> bool:
        pointer = store.pointer()
        return pointer is not None and pointer[0] == self.spec.schema_version

    def _scan_births(self, consumer, starts, ends) -> set[str]:
        """The aggregates whose first event (version 1) sits in [start, end) of its partition: the rebuilt set."""
        births: set[str] = set()

        def collect(messages, events) -> None:
            for event in events:
                if event is not None and getattr(event, "version", None) == 1:
                    births.add(event.aggregate_id)

        self._read(consumer, starts, ends, "scan", collect)
        return births

    def _read(self, consumer, starts, ends, phase, handle) -> dict[Position, int]:
        """Read [starts, ends) of every partition, handing each batch (messages, decoded events) to handle; returns
        the positions reached (past transaction markers and aborted records)."""
        from confluent_kafka import KafkaException, TopicPartition

        from orderstream.kafka.dead_letters import is_dead_letter_topic, retry_group
        from orderstream.schemas.errors import DecodeError
        from orderstream.schemas.wire import codec_for

        codec = codec_for(self.settings)
        reached = dict(starts)
        pending = {p for p in starts if starts[p] < ends.get(p, 0)}
        self.progress.phase(phase, sum(max(0, ends[p] - starts[p]) for p in pending))
        if not pending:
            return reached
        consumer.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in sorted(pending)])
        dead_letter_topics = {t for t, _ in pending if is_dead_letter_topic(t)}  # none assigned: no per-record test
        batch_size = self.settings.projection_batch_size
        decode = codec.decode
        try:
            while pending:
                if self.stop.is_set():
                    raise ReplayInterrupted(f"{self.spec.name}: replay interrupted; the live projection is untouched")
                messages = consumer.consume(num_messages=batch_size, timeout=0.5)
                events: list = []
                append = events.append
                for message in messages:  # one pass per record: this loop runs once per event of the rebuild
                    if message.error():
                        raise KafkaException(message.error())
                    if (
                        dead_letter_topics
                        and message.topic() in dead_letter_topics
                        and retry_group(message) != self.group_id
                    ):
                        append(None)  # not a retry request for the live projector's group: skipped as it does
                        continue
                    try:
                        append(decode(message.value()))
                    except DecodeError as exc:
                        if phase != "scan":  # the scan reads what the replay reads again: counted there
                            self._reject(message, exc)
                        events.append(None)  # its offset moves on, nothing is applied
                handle(messages, events)
                tracked = [TopicPartition(t, p) for t, p in sorted(pending)]
                covered = 0
                for tp in consumer.position(tracked):
                    position = (tp.topic, tp.partition)
                    if tp.offset >= 0 and tp.offset > reached[position]:
                        covered += min(tp.offset, ends[position]) - min(reached[position], ends[position])
                        reached[position] = tp.offset
                    if reached[position] >= ends[position]:
                        pending.discard(position)
                self.progress.advance(covered, 0)
        finally:
            consumer.unassign()
        return reached

    def consume_into(self, consumer, store, target, starts, ends, skip, phase) -> dict[Position, int]:
        def apply(messages, events) -> None:
            if skip is None:  # --from-beginning: every decoded event is applied (None: undecodable, rejected in _read)
                records = [
                    Record(m.topic(), m.partition(), m.offset(), e) for m, e in zip(messages, events, strict=True)
                ]
                applied = len(records) - events.count(None)
            else:
                records, applied = [], 0
                for message, event in zip(messages, events, strict=True):
                    position = (message.topic(), message.partition())
                    if event is None:
                        pass  # undecodable: rejected in _read
                    elif skip(position, message.offset(), event.aggregate_id):
                        self._skipped += 1
                        event = None  # already in the copied rows: the offset moves, nothing is applied
                    else:
                        applied += 1
                    records.append(Record(message.topic(), message.partition(), message.offset(), event))
            self._applied += applied
            if records:
                try:
                    store.apply(records, target, shadow=True, bulk=True)
                except ProjectionError:
                    self._apply_one_by_one(store, target, messages, records)
                self.progress.advance(0, applied)
                failpoints.point("replay_batch")

        return self._read(consumer, starts, ends, phase, apply)

    def _apply_one_by_one(self, store, target, messages, records) -> None:
        """A batch failed to project: apply it one record per transaction and skip the records that cannot be
        projected, as the live projector does (it dead-letters them)."""
        for message, record in zip(messages, records, strict=True):
            try:
                store.apply([record], target, shadow=True)
            except ProjectionError as exc:
                self._reject(message, exc)
                self._applied -= 1
                store.apply([record._replace(event=None)], target, shadow=True)

    def _reject(self, message, error: Exception) -> None:
        self._rejected += 1
        log.warning(
            "%s: record %s:%d:%d skipped (%s), as the live projector dead-letters it",
            self.spec.name,
            message.topic(),
            message.partition(),
            message.offset(),
            error,
        )

    # --- the swap ------------------------------------------------------------------------------------------------

    def _swap(self, consumer, store, target, live, reached, skip) -> dict[Position, int]:
        deadline = time.monotonic() + self.chase_timeout_s
        while True:
            behind = store.swap_in(target, live, reached)
            if not behind:
                log.info("%s: generation %d is live (replaced %d)", self.spec.name, target, live)
                return reached
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"{self.spec.name}: could not catch up with the live projector within {self.chase_timeout_s:g}s "
                    f"(behind on {len(behind)} partition(s)); nothing was swapped, run the replay again"
                )
            goals = {p: live_offset for p, (_, live_offset) in behind.items()}
            reached |= self.consume_into(
                consumer, store, target, {p: reached.get(p, 0) for p in goals}, goals, skip, "catch up"
            )


def copied_skip(
    rebuilt: set[str] | None, copied_up_to: dict[Position, int]
) -> Callable[[Position, int, str], bool] | None:
    """--from-time: an event is skipped when its aggregate is not rebuilt and it sits below the position the copied
    rows were built up to (they hold it already). None (skip nothing) for --from-beginning."""
    if rebuilt is None:
        return None

    def skip(position: Position, offset: int, aggregate_id: str) -> bool:
        return aggregate_id not in rebuilt and offset < copied_up_to.get(position, 0)

    return skip


def _copy(store, live, target, scope, rebuilt) -> dict[Position, int]:
    from orderstream.views.replay_scope import copy_live

    return copy_live(store, live, target, scope, rebuilt)


@contextmanager
def _replay_lock(store: ProjectionStore) -> Iterator[None]:
    """One replay per projection at a time; the lock is released by the OS or the server when the process dies."""
    url = make_url(store.url)
    if url.get_backend_name() == "postgresql":
        from sqlalchemy import func, select

        with store.engine.connect() as conn:
            key = _name_key(store.spec.name)
            got = conn.execute(select(func.pg_try_advisory_lock(_LOCK_KEY % 2**31, key))).scalar()
            conn.commit()
            if not got:
                raise ReplayError(f"another replay of {store.spec.name} is running on this database")
            try:
                yield
            finally:
                conn.execute(select(func.pg_advisory_unlock(_LOCK_KEY % 2**31, key)))
                conn.commit()
        return
    if not url.database or url.database == ":memory:":
        yield
        return
    import fcntl

    path = Path(f"{url.database}.replay.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReplayError(f"another replay of {store.spec.name} is running ({path} is locked)") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _name_key(name: str) -> int:
    import zlib

    return zlib.crc32(name.encode()) % 2**31
