"""The projector runtime: Kafka -> decode -> pure fold -> one SQL transaction with the rows and the offsets.

The loop, with its commit order spelled out:
1. consume a batch (read_committed, at most settings.projection_batch_size records, without waiting for a full one);
2. decode every record; one that cannot be decoded goes to the failure hook. The default, DeadLetterSink, sends it
   to <topic>.dlq and the projector moves past it (a hook that returns counts the record as handled);
   stop_on_undecodable stops the loop with UndecodableRecord instead;
3. ProjectionStore.apply: fold the batch per order in memory, write the rows and the next offset of every partition
   in ONE SQL transaction, commit. A batch that raises ProjectionError is applied again one record per transaction,
   and the record that fails goes to the failure hook (stage apply);
4. only then commit the same offsets to Kafka - a mirror for kafka-consumer-groups and lag monitoring, never read back:
   at most every settings.offset_mirror_interval_s (1 s), when the partitions are revoked, and exactly at a clean stop.
   A commit after every batch cost the broker more than the batches' fetches at a light load (bench/http.py's pairs at
   100 orders/s: the broker used 0.86-1.0 core with a commit per batch, 0.56-0.73 with none).
On assignment the consumer seeks to the offsets stored in the projection's own database (OFFSET_BEGINNING when none),
so a crash anywhere - before, inside or after the SQL commit - neither loses nor repeats an event.

Step 3 runs in a writer thread, one batch at a time, while this thread consumes and decodes the next batch: the
database's own work (psycopg and sqlite3 release the GIL while they wait on it) overlaps the Python work of the next
batch. Measured on 1M events when the writer thread came in: PostgreSQL 21k -> 25-32k events/s; SQLite gained little, as
its executemany takes the GIL back after every row (bench/results/latest.md has the current numbers). Batches are still
applied strictly in order, one transaction each, and a batch is only handed over once the previous one has committed. A
batch already read when a write reports that the generation changed is dropped: the consumer seeks to the new
generation's positions and reads it again. Overlap with a rebalance is what it always was with two instances: the store
drops records below its stored positions, so nothing applies twice.
A full batch (the projector is behind: a backlog) is applied in the reading thread instead, in the same order. Then
both threads would be busy with Python work (decode; the bulk fold and sqlite3's executemany, which takes the GIL back
for every row) and only take turns at the GIL, paying for each switch. Alternating 1M-event rebuilds on one broker:
SQLite 0.47-0.49x the decode-only consumer in the reading thread against 0.38-0.42x through the writer thread,
PostgreSQL 0.35-0.40x against 0.35-0.37x. Live batches keep the writer thread: their commit wait overlaps the next read.

A fresh view with a backlog (its first start on a log that already holds events, a new database) is loaded the way
`replay projection` loads a shadow generation: its tables are created without their secondary indexes, so each row
is written once instead of once per index, and the batch that reaches the backlog's end (the high watermarks seen at
assignment) builds them in its own transaction, so the positions past the backlog commit with the indexes. A backlog
under _DEFER_BACKLOG_BATCHES full batches is indexed at once. Queries answer meanwhile, by primary key as fast as
ever, by other columns more slowly. Profiled (py-spy) on 1M order events into SQLite: the projector's writes and
commits took 7.6 s of its 31 s with the indexes in place, against 1.4 s in the replay's unindexed load.

Static membership: with ORDERSTREAM_INSTANCE_ID set (a stable name per process, e.g. a pod name), the consumer joins
with group.instance.id=<id>.<projection>, so a restarted instance takes its partitions back at once instead of waiting
for the broker to expire the dead member's session. A static member whose session timed out (a broker outage) can be
fenced when it rejoins, a fatal error for its consumer: the projector then replaces the consumer (_rejoin).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from orderstream import failpoints
from orderstream.config import Settings
from orderstream.telemetry.projector import ProjectorTelemetry
from orderstream.topology import dlq_name
from orderstream.views.registry import ProjectionSpec

log = logging.getLogger(__name__)

_DEFER_BACKLOG_BATCHES = 4  # a fresh view's backlog of at least this many full batches is loaded before indexing

INSTANCE_ID_ENV = "ORDERSTREAM_INSTANCE_ID"
# A consumer that hits a fatal error (a static member fenced by another with its group.instance.id, after its session
# timed out in a broker outage) is replaced by a new one; this many times in a row without a batch settled, then the
# error stops the projector.
MAX_CONSUMER_REJOINS = 3


class ConsumerLost(Exception):
    """The consumer reported a fatal error: it cannot fetch or commit any more (librdkafka's _FATAL event)."""

    def __init__(self, error: Any) -> None:
        super().__init__(f"fatal consumer error: {error}")
        self.error = error


# Kafka commit errors that only mean "this member's generation is over"; the SQL store holds the truth, so the next
# batch's commit mirrors the position again.
_STALE_COMMIT_CODES = ("REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "FENCED_INSTANCE_ID")


class UndecodableRecord(RuntimeError):
    """A record on a projected topic cannot be decoded or projected, and the failure hook is stop_on_undecodable: the
    projector stops rather than skip it. The default hook (DeadLetterSink) dead-letters the record instead."""

    def __init__(self, topic: str, partition: int, offset: int, cause: Exception, stage: str = "decode") -> None:
        what = "cannot be decoded" if stage == "decode" else "cannot be projected"
        super().__init__(
            f"record {topic}:{partition}:{offset} {what} ({cause}); the projector stops here so nothing is "
            "skipped silently - inspect it with `orderstream tail`, fix the producer or the schema, then restart"
        )
        self.topic, self.partition, self.offset, self.stage = topic, partition, offset, stage


def stop_on_undecodable(message: Any, error: Exception, stage: str = "decode") -> None:
    """A failure hook that stops the loop instead of dead-lettering (the record is named in the error)."""
    raise UndecodableRecord(message.topic(), message.partition(), message.offset(), error, stage) from error


class DeadLetterSink:
    """The default failure hook: the record goes to <topic>.dlq unchanged (see orderstream.kafka.dead_letters) and the
    projector moves past it. The dead letter is acknowledged by the broker BEFORE the batch's SQL commit stores the
    position past it, so none is ever lost; a crash between the two writes it again on restart (same original position
    in its headers, which `dlq list` shows).

    Later events of the same order are applied when they can be; those that cannot (they need the failed one, e.g. a
    version gap) fail at the apply stage and are dead-lettered too, so an order's view is parked behind its first
    failure until the cause is fixed and the projection is replayed (`orderstream replay projection NAME`).
    """

    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = group
        self._producer = None
        self._lock = threading.Lock()  # the projector's reading thread and its writer thread both hand records here

    def __call__(self, message: Any, error: Exception, stage: str = "decode") -> None:
        from confluent_kafka import KafkaException, Producer

        from orderstream.kafka.clients import producer_config
        from orderstream.kafka.dead_letters import dead_letter, produce_dead_letter

        with self._lock:
            if self._producer is None:
                self._producer = Producer(producer_config(self.settings))
        log.error(
            "%s[%d]@%d failed at %s (%s: %s): sent to the dead-letter topic",
            message.topic(),
            message.partition(),
            message.offset(),
            stage,
            type(error).__name__,
            error,
        )
        produce_dead_letter(self._producer, dead_letter(message, self.group, stage, error))
        if self._producer.flush(30) != 0:
            raise KafkaException(
                f"dead letter of {message.topic()}[{message.partition()}]@{message.offset()} not acknowledged"
            )


def _run_here(function: Callable[..., Any], *args: Any) -> Future:
    """Run function in this thread; its result or its exception in a done Future, as the writer thread hands back."""
    done: Future = Future()
    try:
        done.set_result(function(*args))
    except Exception as exc:  # noqa: BLE001 - raised again where the Future is settled, as a writer's failure is
        done.set_exception(exc)
    return done


def group_id_of(projection: str, topic_prefix: str = "") -> str:
    """The projection's consumer group; the topic prefix isolates environments (and tests) here too."""
    return f"{topic_prefix}orderstream.projection.{projection}"


class Projector:
    """Runs one projection from its topics into its database, exactly once per event (see the module docstring).

    run(stop) returns after stop is set (finishing the batch in hand) and closes the consumer and the engine. A
    ProjectionError does not propagate: the batch is applied again record by record and the failing record goes to
    the failure hook (stage apply; dead-lettered by default). A consumer lost to a fatal error (a static member fenced
    after its session timed out) is replaced by a new one that resumes from the database's positions, up to
    MAX_CONSUMER_REJOINS times in a row. Any other failure - a failure hook that raises (stop_on_undecodable, a dead
    letter not acknowledged), a database error - propagates out of run().
    """

    def __init__(
        self,
        settings: Settings,
        spec: ProjectionSpec,
        *,
        database_url: str | None = None,
        group_id: str | None = None,
        on_undecodable: Callable[[Any, Exception, str], None] | None = None,
        consumer_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.name = spec.name
        self.database_url = database_url or settings.database_url_for(spec.name)
        self.group_id = group_id or group_id_of(spec.name, settings.topic_prefix)
        self._telemetry = ProjectorTelemetry(settings, spec.name, self.group_id)
        self.on_undecodable = self._telemetry.counting(on_undecodable or DeadLetterSink(settings, self.group_id))
        self.consumer_overrides = consumer_overrides or {}
        # its topics, and their DLQ topics for the retry requests addressed to its group (kafka/dead_letters.py)
        self.topics = [settings.topic(name) for name in (*spec.topics, *map(dlq_name, spec.topics))]
        self._dead_letter_topics = frozenset(settings.topic(dlq_name(name)) for name in spec.topics)
        self._store = None
        self._generation = 0
        self._mirrored: dict[tuple[str, int], int] = {}  # the positions of the partitions it owns (stop commits them)
        self._rejoins = 0  # consumers lost to a fatal error since the last batch settled (_rejoin)
        self._unmirrored: dict[tuple[str, int], int] = {}  # ... those not committed to Kafka yet
        self._mirror_due = 0.0  # time.monotonic() of the next mirror commit
        # while the live generation's secondary indexes wait for the backlog to load: the high watermark per assigned
        # partition at assignment (0: nothing to wait for there); None once they exist
        self._deferred: dict[tuple[str, int], int] | None = None

    def _consumer_config(self) -> dict[str, Any]:
        from orderstream.kafka.clients import consumer_config, live_fetch_wait_ms

        extra: dict[str, Any] = {
            "client.id": f"{self.settings.client_id}.{self.name}",
            "fetch.wait.max.ms": live_fetch_wait_ms(self.settings),  # read-your-writes waits on this reader
        }
        instance = os.environ.get(INSTANCE_ID_ENV)
        if instance:
            extra["group.instance.id"] = f"{instance}.{self.name}"
        return consumer_config(self.settings, self.group_id, **extra) | self.consumer_overrides

    def run(self, stop: threading.Event) -> None:
        from orderstream.schemas.wire import wait_for_codec
        from orderstream.views.store import ProjectionStore

        codec = wait_for_codec(self.settings, stop.is_set, lambda line: log.warning("%s: %s", self.name, line))
        if codec is None:
            return
        self._store = store = ProjectionStore(self.database_url, self.spec, writer=True)
        consumer = None
        writer = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-writer")
        written: Future | None = None  # the batch the writer thread is applying
        try:
            self._generation = store.ensure(defer_indexes=True)
            if store.lacks_indexes(self._generation):
                self._deferred = {}
                log.info("%s: secondary indexes deferred until the backlog is loaded", self.name)
            consumer = self._subscribe()
            log.info("%s: projecting %s (generation %d)", self.name, ", ".join(self.topics), self._generation)
            while not stop.is_set():
                messages = self._next_batch(consumer)
                if not messages:
                    self._mirror(consumer)  # an idle projector still mirrors its last batches
                index_now = self._backlog_loaded(consumer)  # this batch builds the deferred indexes
                try:
                    messages, records = self._decode(codec, messages)
                except ConsumerLost as lost:
                    if written is not None:
                        self._finish_without_consumer(written)
                        written = None
                    consumer = self._rejoin(consumer, lost)
                    continue
                if written is not None:
                    current = self._settle(consumer, written)
                    written = None
                    if not current:
                        continue  # the generation changed: `records` were read before the re-seek; read them again
                if records:
                    apply = functools.partial(self._apply, build_indexes=index_now)
                    if len(records) >= self.settings.projection_batch_size:  # behind: applied here (docstring)
                        written = _run_here(self._telemetry.apply, apply, messages, records)
                    else:
                        written = writer.submit(self._telemetry.apply, apply, messages, records)
                elif index_now:
                    store.create_indexes(self._generation)
                if index_now:
                    self._deferred = None
            if written is not None:
                self._settle(consumer, written)
                written = None
            self._commit_to_kafka(consumer, self._mirrored, wait=True)  # a clean stop leaves Kafka's mirror exact
            self._unmirrored = {}  # all of it is in Kafka now: close()'s revoke has nothing left to commit
        finally:
            writer.shutdown(wait=True)  # a failure above lets the batch in hand finish (or fail) before closing
            if consumer is not None:
                consumer.close()
            store.dispose()
            log.info("%s: stopped", self.name)

    def _subscribe(self) -> Any:
        from confluent_kafka import Consumer

        consumer = Consumer(self._consumer_config())
        consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        return consumer

    def _finish_without_consumer(self, written: Future) -> None:
        """The batch in hand commits to the database (or its failure propagates); its positions are not mirrored to
        Kafka (the lost consumer cannot commit) and a generation swap it found is taken up by the next assignment."""
        from orderstream.views.store import GenerationChanged

        try:
            written.result()
        except GenerationChanged as changed:
            self._switch_generation(None, changed.generation)

    def _rejoin(self, consumer, lost: ConsumerLost) -> Any:
        """Replace a consumer that hit a fatal error with a new one, which the group assigns partitions to; each is
        sought to the database's position (_on_assign), so nothing is skipped or applied twice. The error propagates
        when MAX_CONSUMER_REJOINS consumers in a row were lost without a batch settled in between."""
        self._rejoins += 1
        if self._rejoins > MAX_CONSUMER_REJOINS:
            raise lost
        log.warning(
            "%s: %s; a new consumer rejoins the group and resumes from the database's positions", self.name, lost
        )
        self._mirrored, self._unmirrored = {}, {}  # nothing left for the lost consumer's revoke to commit
        try:
            consumer.close()
        except Exception as exc:  # noqa: BLE001 - a lost consumer may fail to leave; the new one joins regardless
            log.warning("%s: the lost consumer did not close cleanly: %s", self.name, exc)
        return self._subscribe()

    def _next_batch(self, consumer) -> list:
        """Up to projection_batch_size records: all that are buffered at once, else wait (poll_timeout_s at most) for
        the next one and take whatever arrived with it. consume(n, timeout) alone would wait the whole timeout for n
        records, which puts that timeout on every read-your-writes when traffic is low."""
        size = self.settings.projection_batch_size
        messages = consumer.consume(num_messages=size, timeout=0)
        if messages:
            return messages
        first = consumer.poll(self.settings.poll_timeout_s)
        if first is None:
            return []
        return [first, *consumer.consume(num_messages=size - 1, timeout=0)] if size > 1 else [first]

    def _on_assign(self, consumer, partitions) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        stored = self._store.next_offsets(self._generation)
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            if (tp.topic, tp.partition) in stored:  # mirrored again soon, even if nothing new arrives
                self._mirrored[(tp.topic, tp.partition)] = self._unmirrored[(tp.topic, tp.partition)] = tp.offset
        log.info("%s: assigned %s", self.name, ", ".join(f"{tp.topic}:{tp.partition}@{tp.offset}" for tp in partitions))
        if self._deferred is not None:
            self._note_backlog(consumer, partitions)
        consumer.assign(partitions)
        self._telemetry.rebalanced("assigned")

    def _on_revoke(self, consumer, partitions) -> None:
        log.info("%s: revoked %s", self.name, ", ".join(f"{tp.topic}:{tp.partition}" for tp in partitions))
        self._telemetry.rebalanced("revoked")
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        # still ours until unassign(): mirror what is pending; after that their next owner mirrors them, and a later
        # commit of ours would move the group back
        self._commit_to_kafka(consumer, {where: self._unmirrored[where] for where in revoked & self._unmirrored.keys()})
        for where in revoked:
            self._mirrored.pop(where, None)
            self._unmirrored.pop(where, None)
            if self._deferred is not None:
                self._deferred.pop(where, None)
        consumer.unassign()

    def _note_backlog(self, consumer, partitions) -> None:
        """Indexes deferred: note where the newly assigned partitions' backlog ends (their high watermarks now). When
        all the backlog left is under _DEFER_BACKLOG_BATCHES batches, there is nothing to wait for: index now."""
        from confluent_kafka import KafkaException

        deferred = self._deferred
        assert deferred is not None
        for tp in partitions:
            try:
                _, high = consumer.get_watermark_offsets(tp, timeout=10)
            except KafkaException:
                high = 0  # unknown: that partition does not hold the indexes back
            deferred[(tp.topic, tp.partition)] = max(0, high)
        left = sum(max(0, high - self._mirrored.get(where, 0)) for where, high in deferred.items())
        if left < _DEFER_BACKLOG_BATCHES * self.settings.projection_batch_size:
            deferred.update(dict.fromkeys(deferred, 0))
        else:
            log.info("%s: loading a backlog of %d records before building the secondary indexes", self.name, left)

    def _backlog_loaded(self, consumer) -> bool:
        """Indexes deferred and every assigned partition read up to the end of its backlog (the batch in hand
        included): the batch in hand builds them."""
        from confluent_kafka import TopicPartition

        if not self._deferred:  # not deferred, or nothing assigned yet
            return False
        # _mirrored: the positions the database holds (read on assignment, then each batch's)
        waiting = {where: end for where, end in self._deferred.items() if end > self._mirrored.get(where, 0)}
        if not waiting:
            return True
        for tp in consumer.position([TopicPartition(topic, partition) for topic, partition in waiting]):
            if tp.offset < waiting[(tp.topic, tp.partition)]:  # also an invalid position (-1001): nothing read yet
                return False
        return True

    def _decode(self, codec, messages: list) -> tuple[list, list]:
        """The batch's data messages and their records, decoded, index for index; an undecodable one goes to the
        failure hook (event None). Error messages carry no record and are left out of both."""
        from orderstream.kafka.clients import is_fatal
        from orderstream.kafka.dead_letters import retry_group
        from orderstream.schemas.errors import DecodeError
        from orderstream.views.store import Record

        # A fatal error drops the whole batch before any of it is handled (no record dead-lettered twice): the next
        # consumer reads it again.
        for message in messages:
            error = message.error()
            if error is not None and is_fatal(error):
                raise ConsumerLost(error)
        kept, records = [], []
        decode, dead_letter_topics = codec.decode, self._dead_letter_topics  # this loop runs once per event
        for message in messages:
            if message.error():
                # e.g. max.poll.interval exceeded after a pause: librdkafka has left the group and rejoins on the
                # next poll; the positions in the database keep whatever it does next exactly-once
                log.warning("%s: consumer error (librdkafka recovers): %s", self.name, message.error())
                continue
            topic = message.topic()
            if topic in dead_letter_topics and retry_group(message) != self.group_id:
                event = None  # a letter, a marker or another group's retry request: only its position moves on
            else:
                try:
                    event = decode(message.value())
                except DecodeError as exc:
                    self.on_undecodable(message, exc, "decode")
                    event = None
            kept.append(message)
            records.append(Record(topic, message.partition(), message.offset(), event))
        return kept, records

    def _apply(self, messages: list, records: list, build_indexes: bool = False) -> dict[tuple[str, int], int]:
        """The writer thread's work: one batch into the database (see ProjectionStore.apply)."""
        from orderstream.views.base import ProjectionError

        try:
            # a full batch means the projector is behind (a backlog, a late start): the view's bulk fold, same rows
            behind = len(records) >= self.settings.projection_batch_size
            return self._store.apply(
                records,
                self._generation,
                before_commit=lambda: failpoints.point("mid_batch"),
                bulk=behind,
                build_indexes=build_indexes,
            )
        except ProjectionError:
            return self._apply_one_by_one(messages, records, build_indexes)

    def _settle(self, consumer, written: Future) -> bool:
        """Wait for the writer's batch and mirror its positions to Kafka. False when the write found another
        generation live (the consumer is re-seeked there); any other failure propagates."""
        from orderstream.views.store import GenerationChanged

        try:
            positions = written.result()
        except GenerationChanged as changed:
            self._switch_generation(consumer, changed.generation)
            return False
        failpoints.point("after_sql_commit")
        self._rejoins = 0
        self._telemetry.settled(consumer, positions)
        self._mirror(consumer, positions)
        return True

    def _mirror(self, consumer, positions: dict[tuple[str, int], int] | None = None) -> None:
        """Note positions the database now holds; commit the pending ones to Kafka when offset_mirror_interval_s has
        passed since the last such commit."""
        if positions:
            self._mirrored.update(positions)
            self._unmirrored.update(positions)
        now = time.monotonic()
        if self._unmirrored and now >= self._mirror_due:
            pending, self._unmirrored = self._unmirrored, {}
            self._mirror_due = now + self.settings.offset_mirror_interval_s
            self._commit_to_kafka(consumer, pending)

    def _apply_one_by_one(self, messages: list, records: list, build_indexes: bool) -> dict[tuple[str, int], int]:
        """A batch failed to project: apply its records one transaction each, so only the record that cannot be
        projected is handed to the failure hook (stage apply) and everything else is applied. The batch's index
        build goes with its first record."""
        from orderstream.views.base import ProjectionError

        positions: dict[tuple[str, int], int] = {}
        for message, record in zip(messages, records, strict=True):
            try:
                done = self._store.apply([record], self._generation, build_indexes=build_indexes)
            except ProjectionError as exc:
                self.on_undecodable(message, exc, "apply")
                done = self._store.apply([record._replace(event=None)], self._generation, build_indexes=build_indexes)
            build_indexes = False
            for position, offset in done.items():
                positions[position] = max(positions.get(position, 0), offset)
        return positions

    def _commit_to_kafka(self, consumer, positions: dict[tuple[str, int], int], wait: bool = False) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in positions.items()]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=not wait)  # a mirror: nothing waits for it while running
        except KafkaException as exc:
            # Only a mirror for lag tools: the database holds the position. This member's generation may be over
            # (a rebalance, or a pause past max.poll.interval that made it leave the group) - the next batch's commit
            # mirrors the position again. Only a fatal client error stops the projector.
            if exc.args[0].fatal():
                raise
            level = logging.INFO if exc.args[0].name() in _STALE_COMMIT_CODES else logging.WARNING
            log.log(
                level, "%s: Kafka commit skipped (%s); the database holds the position", self.name, exc.args[0].name()
            )

    def _switch_generation(self, consumer, generation: int) -> None:
        """A rebuild swapped generations: continue from the new generation's stored offsets (re-seek `consumer`'s
        partitions there; None: a consumer still to be assigned, whose _on_assign reads them)."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        log.info("%s: generation %d is live now (was %d); re-seeking", self.name, generation, self._generation)
        self._generation = generation
        self._deferred = None  # a replay builds a generation's indexes before it swaps it in
        if consumer is None:
            return
        stored = self._store.next_offsets(generation)
        for tp in consumer.assignment():
            consumer.seek(
                TopicPartition(tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_BEGINNING))
            )
