"""The processor runtime (the write side): consume -> decide -> produce, exactly once, inside Kafka transactions.

Any service plugs in a ProcessorSpec: its input topics, its changelog (its own output topic, co-partitioned with the
inputs) and a ProcessorLogic whose handler gets (decoded input, the current KeyState of the record's key) and returns
an Outcome: changelog events, other records, and an optional reply built after the events' offsets are known.

One batch = one transaction, in this order (see _process):
  1. begin; for each record: decode, handle, produce its changelog events (to the input's partition number)
  2. flush: delivery reports give the events' offsets (the read-your-writes positions)
  3. produce the replies, which carry those positions
  4. send the consumer positions with the group metadata (KIP-447: a zombie whose generation is stale is fenced)
  5. commit; only now does the in-memory state take the batch's changes.
An abortable error aborts, rewinds the consumer to the batch's first offsets and drops the batch's state changes; a
fatal producer error recreates the producer (init_transactions fences the old epoch) and does the same. A record that
has no key, cannot be decoded, is of a type the logic does not accept, or makes the handler raise goes to the spec's
dead-letter hook. The default (to_dead_letter_topic) sends it to <topic>.dlq within the batch's transaction and carries
on with the next record; stop_on_undecodable stops the loop with a ProcessorError instead.

State: on partition assignment, the committed offsets are fetched first (read_committed => KIP-447 "require stable":
pending transactions on them are resolved), then the changelog partition with the same number is restored from the
cached checkpoint up to its last stable offset (runtime/restore.py: records that do not fit are skipped, and
dead-lettered once in one transaction with the restore's screened offsets), and only then is input consumed. The
checkpoint cache (runtime/checkpoints.py) writes the changed state now and then, on revocation and on close.

The spec types (ProcessorSpec, ProcessorLogic, Outcome, Output, HandleContext, the dead-letter hooks, ProcessorError)
live in runtime/processor_spec.py and are importable from here too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from orderstream.config import Settings
from orderstream.kafka.clients import consumer_config, is_fatal, producer_config, raise_on_authentication_failure
from orderstream.kafka.dead_letters import (
    READER_RESTORE,
    DeadLetter,
    dead_letter,
    is_dead_letter_topic,
    produce_dead_letter,
    retry_group,
)
from orderstream.runtime.checkpoints import CheckpointCache
from orderstream.runtime.processor_spec import (
    DeadLetterHook,
    HandleContext,
    Outcome,
    Output,
    ProcessorError,
    ProcessorLogic,
    ProcessorSpec,
    stop_on_undecodable,
    to_dead_letter_topic,
)
from orderstream.runtime.restore import ChangelogRestore, Restored
from orderstream.runtime.state import Handled, KeyState, PartitionState
from orderstream.schemas.errors import DecodeError
from orderstream.telemetry.processor import ProcessorTelemetry
from orderstream.topology import dlq_name

__all__ = [
    "DeadLetterHook",
    "HandleContext",
    "Outcome",
    "Output",
    "Processor",
    "ProcessorError",
    "ProcessorLogic",
    "ProcessorSpec",
    "stop_on_undecodable",
    "to_dead_letter_topic",
]

log = logging.getLogger(__name__)

S = TypeVar("S")

DEFAULT_CONSUMER_OVERRIDES = {
    # joined input topics must be assigned partition by partition number: range does that, roundrobin does not
    "partition.assignment.strategy": "range",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "max.poll.interval.ms": 120_000,
}
# linger 1 ms: every batch ends in a flush inside its transaction, which would otherwise wait out the default linger
DEFAULT_PRODUCER_OVERRIDES = {"transaction.timeout.ms": 30_000, "linger.ms": 1}
KAFKA_TIMEOUT_S = 30.0
COMMIT_ATTEMPTS = 4  # a commit that times out is resumed (see Processor._commit_transaction)
# send_offsets_to_transaction answers in milliseconds, or hangs (librdkafka #5456) when its coordinator went away:
# past this deadline the producer is replaced, so a broker restart costs seconds, not 35 s per stage.
SEND_OFFSETS_DEADLINE_S = 10.0
INIT_ATTEMPTS = 6  # init_transactions that times out is resumed: a restarted coordinator can take a while
MAX_FATAL_RECOVERIES = 3
# Errors after which the producer is replaced rather than used again. A broker connection lost (a broker restart): the
# first transaction after it blocked in send_offsets_to_transaction for the full deadline, stage after stage. A
# transaction whose records timed out: the same producer went on failing every transaction that way, for minutes.
CONNECTION_LOST = {"_TRANSPORT", "_ALL_BROKERS_DOWN"}
STUCK = {"_MSG_TIMED_OUT", "_TIMED_OUT", "_TIMED_OUT_QUEUE"}


def _with_deadline(what: str, call: Callable[[], Any], deadline_s: float) -> Any:
    """Run a blocking client call with a hard deadline.

    librdkafka's send_offsets_to_transaction can block past its own timeout, forever, when the group coordinator goes
    away mid-call (a broker restart): librdkafka issues #5456 and #5511, open at confluent-kafka 2.16. Past the deadline
    this raises a fatal _TIMED_OUT error, so the processor abandons that producer (its thread stays blocked) and makes
    a new one with the same transactional.id, whose init_transactions fences the old one and aborts its transaction.
    """
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name=what, daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        log.error("%s blocked for more than %.0fs (librdkafka #5456); replacing the producer", what, deadline_s)
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{what} blocked past {deadline_s:.0f}s", fatal=True))
    if failure:
        raise failure[0]
    return outcome[0] if outcome else None


@dataclass
class _Batch:
    overlay: dict[tuple[int, str], KeyState[Any]] = field(default_factory=dict)
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    changelog_ends: dict[int, int] = field(default_factory=dict)
    replies: list[Callable[[], Output]] = field(default_factory=list)
    delivery_errors: list[Any] = field(default_factory=list)
    events: int = 0
    outputs: int = 0


class Processor(Generic[S]):
    """Runs one ProcessorSpec. Guarantees, per input record: its changelog events, outputs, reply and the consumer
    offset past it are committed in one Kafka transaction, or none of them is. One writer per key (the group's
    partition owner), so commands on one key are decided one after the other on the latest state."""

    def __init__(self, settings: Settings, spec: ProcessorSpec[S], codec: Any | None = None) -> None:
        self.settings = settings
        self.spec = spec
        self.name = spec.name
        self.codec = codec  # None: the settings' codec (schemas.wire), resolved when run() starts
        self.changelog = settings.topic(spec.changelog_topic)
        self._logical = {settings.topic(t): t for t in (*spec.input_topics, spec.changelog_topic)}
        # dead-letter retries come back through the inputs' DLQ topics, addressed to one group (kafka/dead_letters.py)
        self._logical |= {settings.topic(dlq_name(t)): t for t in spec.input_topics}
        self._checkpoints = CheckpointCache(spec.name, spec.state_dir, self.changelog, spec.checkpoint_interval_s)
        self._restore = ChangelogRestore(
            settings, spec.name, spec.group_id, self.changelog, spec.logic, self._checkpoints
        )
        self._states: dict[int, PartitionState] = {}
        self._owned: set[int] = set()
        self._producer: Any = None
        self._consumer: Any = None
        self._in_transaction = False
        self._connection_lost = False  # set by the producer's error callback or a revocation: replace it first
        self._fatal_recoveries = 0
        self.batches_committed = 0  # for tests and status
        self._telemetry = ProcessorTelemetry(
            settings, spec.service or spec.name, spec.name, spec.group_id, self._logical
        )
        self._tracing = self._telemetry.tracer  # None when tracing is off: then no per-record tracing work at all

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this processor owns now: restored and consuming."""
        return frozenset(self._owned)

    @property
    def states(self) -> Mapping[int, PartitionState]:
        """The committed state per changelog partition (read-only view; owned partitions and cached ones)."""
        return MappingProxyType(self._states)

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        from orderstream.schemas.wire import wait_for_codec

        if self.codec is None:  # in registry mode: waits (saying so once) while the registry does not answer
            self.codec = wait_for_codec(self.settings, stop.is_set, lambda line: log.warning("%s: %s", self.name, line))
            if self.codec is None:
                return
        self._producer = self._new_producer()
        self._consumer = Consumer(
            consumer_config(
                self.settings, self.spec.group_id, **(DEFAULT_CONSUMER_OVERRIDES | self.spec.consumer_overrides)
            )
        )
        self._consumer.subscribe(
            [self.settings.topic(t) for t in (*self.spec.input_topics, *map(dlq_name, self.spec.input_topics))],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info(
            "%s: started (group %s, transactional.id %s)", self.name, self.spec.group_id, self.spec.transactional_id
        )
        try:
            while not stop.is_set():
                records = self._next_batch()
                if records:
                    self._process(records)
                if self._checkpoints.due():
                    self._checkpoints.write(self._states, self._owned, wait=False)
        finally:
            self._close()

    def _next_batch(self) -> list[Any]:
        """Up to batch_size records: wait (up to poll_timeout) for the first, then take what is already fetched, so a
        lone command is handled at once and a burst still makes one big batch."""
        records = self._consumer.consume(1, self.settings.poll_timeout_s)
        if records and self.settings.batch_size > 1:
            records += self._consumer.consume(self.settings.batch_size - 1, 0)
        return [r for r in records if not self._is_error_event(r)]

    def _close(self) -> None:
        if self._in_transaction:
            self._abort_quietly("stopping")
        if self._consumer is not None:
            self._consumer.close()  # revokes (and so checkpoints) the assignment
            self._consumer = None
        self._checkpoints.write(self._states, set(self._states))
        self._checkpoints.close()
        if self._producer is not None:
            self._producer.flush(KAFKA_TIMEOUT_S)
            self._producer = None
        log.info("%s: stopped", self.name)

    def _new_producer(self) -> Any:
        config = producer_config(
            self.settings,
            self.spec.transactional_id,
            **(DEFAULT_PRODUCER_OVERRIDES | {"error_cb": self._on_producer_error} | self.spec.producer_overrides),
        )
        producer = (self.spec.producer_factory or Producer)(config)
        self._connection_lost = False
        for attempt in range(1, INIT_ATTEMPTS + 1):
            try:
                producer.init_transactions(KAFKA_TIMEOUT_S)  # fences any older producer with our id, aborts its txn
                return producer
            except KafkaException as exc:  # a coordinator still loading, or the old producer's txn still aborting
                if attempt == INIT_ATTEMPTS or not exc.args[0].retriable() or exc.args[0].fatal():
                    raise
                log.warning("%s: init_transactions not finished (%s); calling it again", self.name, exc.args[0])
        raise AssertionError("unreachable")

    def _on_producer_error(self, error: Any) -> None:
        """The producer's error callback: authentication failures raise (as for every client); a lost broker
        connection marks the producer to be replaced before the next transaction (see CONNECTION_LOST)."""
        raise_on_authentication_failure(error)
        if error.name() in CONNECTION_LOST:
            self._connection_lost = True

    def _replace_if_stale(self) -> None:
        """Before a transaction: a producer that lost its broker connection since the last one is replaced by a new
        one (init_transactions fences it). Its callbacks are served first, so a loss it saw is known here."""
        self._producer.poll(0)
        if self._connection_lost:
            log.warning(
                "%s: broker connection lost or partitions moved; a new producer for the next transaction", self.name
            )
            self._producer = self._new_producer()

    def _is_error_event(self, record: Any) -> bool:
        error = record.error()
        if error is None:
            return False
        if is_fatal(error):
            raise ProcessorError(f"{self.name}: fatal consumer error: {error}")
        log.warning("%s: consumer error (librdkafka retries): %s", self.name, error)
        return True

    # --- rebalances --------------------------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        # Committed offsets first: with read_committed librdkafka asks for *stable* offsets, which waits until any
        # transaction carrying offsets for these partitions (a zombie's) is committed or aborted.
        committed = consumer.committed(partitions, timeout=KAFKA_TIMEOUT_S)
        numbers = {tp.partition for tp in partitions}
        began = time.monotonic()
        self._checkpoints.wait()  # the restore below changes key states the background write may be pickling
        restored = self._restore.restore(self._states, numbers, self.codec)
        if restored.poisoned:
            self._dead_letter_changelog(restored)
        self._owned |= numbers
        consumer.assign(committed)
        self._telemetry.rebalanced("assigned", partitions)
        log.info(
            "%s: assigned partitions %s; state rebuilt (%d changelog records replayed, %d repeats ignored, %d skipped) "
            "in %.2fs",
            self.name,
            sorted(numbers),
            restored.replayed,
            restored.repeated,
            restored.already_dead_lettered + len(restored.poisoned),
            time.monotonic() - began,
        )

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        # The loop is single-threaded and commits every batch before consuming again, so no transaction can be
        # open here; abort defensively if one is.
        if self._in_transaction:
            self._abort_quietly("partitions revoked")
        self._connection_lost = True  # a revocation often follows a lost coordinator: start afresh (one init, ms)
        numbers = {tp.partition for tp in partitions}
        self._telemetry.rebalanced("revoked", partitions)
        self._checkpoints.write(self._states, numbers & self._owned)
        self._owned -= numbers  # the state stays in memory as a cache: replay from its checkpoint catches up
        log.info("%s: partitions %s revoked", self.name, sorted(numbers))

    # --- state -------------------------------------------------------------------------------------------------

    def _dead_letter_changelog(self, restored: Restored) -> None:
        """Dead-letter what the restore skipped, in ONE transaction with the restore group's screened offsets (see
        runtime/restore.py): committed, the next restore skips these records without writing them again; failed,
        nothing is marked and the next restore finds and dead-letters them again."""
        marks = [TopicPartition(self.changelog, n, offset) for n, offset in sorted(restored.screened.items())]
        try:
            self._producer.begin_transaction()
            self._in_transaction = True
            for poisoned in restored.poisoned:
                letter = dead_letter(
                    poisoned.record, self.spec.group_id, poisoned.stage, poisoned.error, reader=READER_RESTORE
                )
                produce_dead_letter(self._producer, letter)
            producer, group = self._producer, restored.group_metadata
            _with_deadline(
                "send_offsets_to_transaction",
                lambda: producer.send_offsets_to_transaction(marks, group, KAFKA_TIMEOUT_S),
                KAFKA_TIMEOUT_S + 5,
            )
            self._commit_transaction()
            self._in_transaction = False
        except KafkaException as exc:
            log.error(
                "%s: %d skipped changelog record(s) not dead-lettered (%s); the next restore does it",
                self.name,
                len(restored.poisoned),
                exc,
            )
            if exc.args[0].fatal():
                self._in_transaction = False
                self._producer = self._new_producer()
            elif self._in_transaction:
                self._abort_quietly("changelog dead letters failed")
            return
        log.info("%s: %d skipped changelog record(s) dead-lettered", self.name, len(restored.poisoned))

    def _key_state(self, batch: _Batch, partition: int, key: str) -> KeyState[S]:
        current = batch.overlay.get((partition, key))
        if current is None:
            committed = self._states[partition].keys.get(key)
            current = committed.copy() if committed is not None else KeyState(self.spec.logic.initial(key))
            batch.overlay[(partition, key)] = current
        return current

    # --- one batch, one transaction ------------------------------------------------------------------------------

    def _process(self, records: list[Any]) -> None:
        began = time.monotonic()
        batch = _Batch()
        trace = self._telemetry.trace_batch(records)  # None when tracing is off
        handle = self._handle if trace is None else trace.wrap(self._handle)
        for record in records:
            where = (record.topic(), record.partition())
            batch.first_offsets.setdefault(where, record.offset())
            batch.next_offsets[where] = record.offset() + 1
        self._replace_if_stale()
        try:
            self._producer.begin_transaction()
            self._in_transaction = True
            for record in records:
                handle(batch, record)
            self._flush(batch)
            for reply in batch.replies:
                self._produce(batch, reply(), None)
            positions, group = self._positions(batch), self._consumer.consumer_group_metadata()
            producer = self._producer
            _with_deadline(  # see _with_deadline: this call can block past its own timeout
                "send_offsets_to_transaction",
                lambda: producer.send_offsets_to_transaction(positions, group, KAFKA_TIMEOUT_S),
                SEND_OFFSETS_DEADLINE_S,
            )
            self._telemetry.timed_commit(self._commit_transaction)
            self._in_transaction = False
        except KafkaException as exc:
            self._telemetry.aborted(exc.args[0], trace)
            self._recover(exc.args[0], batch)
            return
        except BaseException as exc:
            self._telemetry.aborted(exc, trace)
            self._abort_quietly("handler or decode error")
            raise
        self._apply(batch)
        self._fatal_recoveries = 0
        self.batches_committed += 1
        self._telemetry.committed(records, batch.events, began, self._consumer, trace)
        log.info(
            "%s: batch of %d records (partitions %s) -> %d events, %d other records, %d replies; committed in %.0f ms",
            self.name,
            len(records),
            sorted({p for _, p in batch.next_offsets}),
            batch.events,
            batch.outputs,
            len(batch.replies),
            (time.monotonic() - began) * 1000,
        )

    def _commit_transaction(self) -> None:
        """commit_transaction, flushing the replies (it fails if any was not delivered). A commit that times out goes
        on in the background and librdkafka says to call it again (aborting then would conflict with it and stop the
        service): so a retriable error that does not require an abort is retried, COMMIT_ATTEMPTS times in all."""
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                self._producer.commit_transaction(KAFKA_TIMEOUT_S)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if attempt == COMMIT_ATTEMPTS or not error.retriable() or error.txn_requires_abort() or error.fatal():
                    raise
                log.warning(
                    "%s: commit not finished (%s); calling it again (attempt %d)", self.name, error, attempt + 1
                )

    def _handle(self, batch: _Batch, record: Any) -> None:
        partition = record.partition()
        if is_dead_letter_topic(record.topic()) and retry_group(record) != self.spec.group_id:
            return  # a letter, a marker or another group's retry request: its position moves on, nothing else
        if record.key() is None:
            self._dead_letter(batch, record, ValueError("the record has no key"), "validate")
            return
        try:
            message = self.codec.decode(record.value())
        except DecodeError as exc:
            self._dead_letter(batch, record, exc, "decode")
            return
        accepts = getattr(self.spec.logic, "accepts", None)
        if accepts is not None and not isinstance(message, accepts):
            self._dead_letter(
                batch, record, TypeError(f"{type(message).__name__} is not handled by {self.name}"), "validate"
            )
            return
        key = record.key().decode("utf-8")
        state = self._key_state(batch, partition, key)
        context = HandleContext(self.spec.clock(), self._logical[record.topic()], partition, record.offset(), key)
        try:
            outcome = self.spec.logic.handle(message, state, context)  # pure: nothing changed yet if it raises
        except Exception as exc:  # noqa: BLE001 - the record is dead-lettered (or the hook stops the loop)
            self._dead_letter(batch, record, exc, "apply")
            return
        for event in outcome.events:
            state.value = self.spec.logic.evolve(state.value, event)
            state.version = max(state.version, event.version)
            handled = Handled(event.version, partition, None, event.occurred_at)
            state.handled[event.causation_id] = handled
            self._produce(batch, Output(self.spec.changelog_topic, key, event, partition), handled)
            batch.events += 1
        for output in outcome.outputs:
            self._produce(batch, output, None)
            batch.outputs += 1
        if outcome.reply is not None:
            batch.replies.append(outcome.reply)

    def _dead_letter(self, batch: _Batch, record: Any, error: Exception, stage: str) -> None:
        self._telemetry.dead_lettered(record, stage, error)
        if retry_group(record) is not None:  # a retry that failed again: a marker, never a second letter
            produce_dead_letter(self._producer, dead_letter(record, self.spec.group_id, stage, error))
            batch.outputs += 1
            return
        for item in self.spec.dead_letter(record, error, stage, self.spec.group_id):
            if isinstance(item, DeadLetter):
                produce_dead_letter(self._producer, item)  # a failed delivery fails commit_transaction
            else:
                self._produce(batch, item, None)
            batch.outputs += 1

    def _produce(self, batch: _Batch, output: Output, handled: Handled | None) -> None:
        topic = self.settings.topic(output.topic)

        def delivered(error: Any, record: Any) -> None:
            if error is not None:
                batch.delivery_errors.append(error)
            elif handled is not None:
                handled.offset = record.offset()
                batch.changelog_ends[record.partition()] = max(
                    batch.changelog_ends.get(record.partition(), 0), record.offset() + 1
                )

        extra = {} if output.partition is None else {"partition": output.partition}
        headers = self.codec.headers(output.value, self.spec.source)
        if self._tracing is not None:  # the context of the record being decided (none for replies)
            headers += self._telemetry.context_headers()
        self._producer.produce(
            topic,
            key=output.key.encode("utf-8"),
            value=self.codec.encode(output.value),
            headers=headers,
            on_delivery=delivered,
            **extra,
        )

    def _flush(self, batch: _Batch) -> None:
        try:
            remaining = self._producer.flush(KAFKA_TIMEOUT_S)
        except SystemError as exc:
            # confluent-kafka 2.x raises a fatal error (e.g. fenced) from flush() but still runs the pending delivery
            # callbacks, so Python reports a SystemError instead (its cause is the real KafkaException, or lost).
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, KafkaException):
                raise cause from None
            self._producer.abort_transaction(KAFKA_TIMEOUT_S)  # raises the real (fatal) error if there is one
            self._in_transaction = False
            raise ProcessorError(f"{self.name}: flush failed without a Kafka error: {exc}") from exc
        if batch.delivery_errors:
            raise KafkaException(batch.delivery_errors[0])
        if remaining:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{remaining} records unacknowledged after flush"))

    def _positions(self, batch: _Batch) -> list[Any]:
        return [TopicPartition(topic, partition, offset) for (topic, partition), offset in batch.next_offsets.items()]

    def _apply(self, batch: _Batch) -> None:
        """The transaction committed: the batch's state becomes the state."""
        for (partition, key), state in batch.overlay.items():
            store = self._states[partition]
            store.keys[key] = state
            store.changed.add(key)
        for partition, end in batch.changelog_ends.items():
            store = self._states[partition]
            store.next_offset = max(store.next_offset, end)

    # --- failures ------------------------------------------------------------------------------------------------

    def _recover(self, error: Any, batch: _Batch) -> None:
        """Abort (or, after a fatal error, replace the producer), drop the batch's state, rewind the consumer."""
        stuck = error.name() in STUCK  # the same producer would time out again: replace it (see STUCK)
        log.warning(
            "%s: transaction failed (%s); %s",
            self.name,
            error,
            "recreating the producer"
            if error.fatal()
            else "aborting, replacing the producer and retrying the batch"
            if stuck
            else "aborting and retrying the batch",
        )
        if not error.fatal():
            try:
                self._producer.abort_transaction(KAFKA_TIMEOUT_S)
                self._in_transaction = False
            except KafkaException as exc:
                if not exc.args[0].fatal() and not (stuck and exc.args[0].retriable()):
                    raise ProcessorError(f"{self.name}: cannot abort the transaction: {exc}") from exc
                error = exc.args[0]  # the new producer's init_transactions aborts what this one could not
        if stuck and not error.fatal():
            self._in_transaction = False
            self._producer = self._new_producer()
        elif error.fatal():
            self._fatal_recoveries += 1
            if self._fatal_recoveries > MAX_FATAL_RECOVERIES:
                raise ProcessorError(f"{self.name}: {self._fatal_recoveries} fatal producer errors in a row: {error}")
            self._in_transaction = False
            self._producer = self._new_producer()
        self._rewind(batch)

    def _rewind(self, batch: _Batch) -> None:
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        for (topic, partition), offset in batch.first_offsets.items():
            if (topic, partition) not in assigned:
                continue  # no longer ours: the next owner starts from the committed offset
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                if exc.args[0].code() not in (KafkaError._STATE, KafkaError._UNKNOWN_PARTITION):
                    raise
                log.info(
                    "%s: %s[%d] is being revoked; its next owner resumes at the committed offset",
                    self.name,
                    topic,
                    partition,
                )

    def _abort_quietly(self, why: str) -> None:
        """Abort on the way out of a failure that is already being raised (its error matters more than this one)."""
        try:
            self._producer.abort_transaction(KAFKA_TIMEOUT_S)
            log.warning("%s: transaction aborted (%s)", self.name, why)
        except KafkaException as exc:
            log.error("%s: aborting the transaction failed too (%s): %s", self.name, why, exc)
        finally:
            self._in_transaction = False
