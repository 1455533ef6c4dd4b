"""`orderstream replay topic SRC --to DST`: copy records into another topic, exactly once, with keys, headers and
timestamps.

TopicCopy guarantees:
- Every SRC record in [start, end) that matches the filter is written to DST once: key, value, headers and CreateTime
  timestamp unchanged, plus one header `orderstream.copied_from` = "<src topic>:<partition>:<offset>" naming its
  source position. [start, end): from the beginning (or the first record at/after --from-time) to the end offsets
  (last stable offsets, read_committed) seen when the copy starts.
- Filter: --from-time <= record timestamp < --until (half-open, both optional) and, with --type, a ce_type header
  whose type name (orderstream.orders.OrderPlaced.v1 -> OrderPlaced) or whole value equals it.
- Exactly once across kills: each batch is one Kafka transaction holding the copied records AND the copy's source
  positions (send_offsets_to_transaction to the copy's own consumer group, named after SRC, DST and the filter). A
  re-run of the same command resumes from the committed positions; a killed run's open transaction is aborted when
  the re-run's init_transactions fences it (same transactional.id). So nothing is copied twice and nothing skipped.
  A different filter is a different copy (its own group), so it starts from its own beginning.
- Partitioning: DST with SRC's partition count gets each record on the same partition number. DST with another count
  gets keys re-partitioned by the default partitioner (murmur2_random, as every orderstream producer): per-key order
  is kept, partition numbers are not; the copy reports this in `notices`.
- DST is created when missing, with SRC's partition count, retention.ms and cleanup.policy and CreateTime
  timestamps; an existing DST is used as it is (it must keep CreateTime timestamps, else the copy refuses).
- Nothing else is written: the copy has no other side effect.
- DST may not be one of the pipeline's own topics (orders.commands, payments.events, ... and their .dlq) unless
  allow_pipeline_destination is set (`--force`, for a restore): services consume those, and a copy would feed them
  records they did not ask for (a copy of orders.events into orders.commands was dead-lettered whole). A --type that
  names no type of the wire contract is refused, as it could only ever copy nothing.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from orderstream import failpoints
from orderstream.config import Settings

SOURCE_HEADER = "orderstream.copied_from"
Position = tuple[str, int]


class CopyError(RuntimeError):
    """The copy cannot go on; what was committed so far stays, and a re-run resumes from there."""


class CopyInterrupted(CopyError):
    pass


@dataclass(frozen=True, slots=True)
class CopyFilter:
    """Which records are copied: timestamps in [from_ms, until_ms) (None: unbounded) and, optionally, one event type."""

    from_ms: int | None = None
    until_ms: int | None = None
    event_type: str | None = None

    @classmethod
    def of(cls, from_time: datetime | None, until: datetime | None, event_type: str | None) -> CopyFilter:
        ms = lambda moment: None if moment is None else int(moment.timestamp() * 1000)  # noqa: E731
        return cls(ms(from_time), ms(until), event_type or None)

    def matches(self, timestamp_ms: int, headers: list[tuple[str, bytes]] | None) -> bool:
        if self.from_ms is not None and timestamp_ms < self.from_ms:
            return False
        if self.until_ms is not None and timestamp_ms >= self.until_ms:
            return False
        if self.event_type is None:
            return True
        ce_type = next((value for name, value in headers or () if name == "ce_type"), None)
        if ce_type is None:
            return False
        text = ce_type.decode(errors="replace") if isinstance(ce_type, bytes) else str(ce_type)
        parts = text.split(".")
        return text == self.event_type or (len(parts) >= 2 and parts[-2] == self.event_type)

    def fingerprint(self) -> str:
        return hashlib.sha256(repr((self.from_ms, self.until_ms, self.event_type)).encode()).hexdigest()[:10]


class CopyProgress:
    """What the copy reports while it runs (the CLI draws a progress bar from it). Default: nothing."""

    def start(self, total: int) -> None:
        pass

    def advance(self, offsets: int, copied: int) -> None:
        pass


@dataclass
class CopyResult:
    source: str
    destination: str
    created: bool
    same_partitioning: bool
    copied: int = 0
    examined: int = 0
    resumed: dict[int, int] = field(default_factory=dict)  # partition -> committed position a re-run started from
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_request(destination: str, copy_filter: CopyFilter, allow_pipeline_destination: bool = False) -> None:
    """Refuse a copy that is wrong whatever the broker holds (see the module docstring); CopyError says why."""
    if not allow_pipeline_destination:
        _check_destination(destination)
    if copy_filter.event_type is not None:
        _check_event_type(copy_filter.event_type)


def _check_destination(destination: str) -> None:
    from orderstream.topology import all_topics

    if destination in {spec.name for spec in all_topics()}:
        raise CopyError(
            f"{destination} is one of the pipeline's own topics, and services consume it: copy into a new topic "
            f"(e.g. {destination}.copy), or pass --force to restore into it on purpose"
        )


def _check_event_type(event_type: str) -> None:
    from orderstream.schemas.catalog import default_catalog

    catalog = default_catalog()
    if event_type not in catalog and event_type not in {entry.ce_type for entry in catalog.entries()}:
        raise CopyError(
            f"--type {event_type}: no such type in the wire contract; `orderstream schemas list` names them"
        )


class TopicCopy:
    """Copies SRC into DST exactly once (see the module docstring). Topic names are given without the prefix."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        destination: str,
        copy_filter: CopyFilter = CopyFilter(),
        *,
        progress: CopyProgress | None = None,
        stop: threading.Event | None = None,
        batch_size: int | None = None,
        on_notice: Callable[[str], None] | None = None,
        allow_pipeline_destination: bool = False,
    ) -> None:
        self.settings = settings
        self.source, self.destination = settings.topic(source), settings.topic(destination)
        if self.source == self.destination:
            raise CopyError("the source and destination topic are the same")
        check_request(destination, copy_filter, allow_pipeline_destination)
        self.filter = copy_filter
        self.progress = progress or CopyProgress()
        self.stop = stop or threading.Event()
        self.batch_size = batch_size or settings.batch_size
        self.on_notice = on_notice or (lambda _: None)
        self.job = (
            f"{settings.topic_prefix}orderstream.topic-copy."
            f"{self.source}.{self.destination}.{copy_filter.fingerprint()}"
        )

    def run(self) -> CopyResult:
        from confluent_kafka import Consumer, Producer

        from orderstream.kafka.clients import consumer_config, producer_config

        started = time.monotonic()
        result = self._prepare_destination()
        consumer = Consumer(
            consumer_config(self.settings, self.job, **{"client.id": f"{self.settings.client_id}.topic-copy"})
        )
        producer = None
        try:
            producer = Producer(producer_config(self.settings, transactional_id=self.job))
            # first: fence a killed run with this id and abort its open transaction, so the committed positions read
            # next are stable (read_committed consumers wait on offsets a pending transaction holds)
            producer.init_transactions(30)
            starts, ends = self._plan(consumer, result)
            self._copy(consumer, producer, starts, ends, result)
        finally:
            consumer.close()
            if producer is not None:
                producer.flush(10)
        result.seconds = time.monotonic() - started
        return result

    # --- topics --------------------------------------------------------------------------------------------------

    def _prepare_destination(self) -> CopyResult:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

        from orderstream.kafka.clients import admin_config

        admin = AdminClient(admin_config(self.settings))
        topics = admin.list_topics(timeout=10).topics
        if self.source not in topics or topics[self.source].error is not None:
            raise CopyError(f"source topic {self.source} does not exist")
        source_partitions = len(topics[self.source].partitions)
        created = False
        if self.destination not in topics:
            configs = self._configs(admin, self.source, ConfigResource)
            wanted = {k: configs[k] for k in ("retention.ms", "cleanup.policy") if configs.get(k) is not None}
            wanted["message.timestamp.type"] = "CreateTime"
            new = NewTopic(self.destination, source_partitions, self.settings.replication_factor, config=wanted)
            try:
                admin.create_topics([new], request_timeout=30)[self.destination].result()
                created = True
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            self._wait_visible(admin)
            topics = admin.list_topics(timeout=10).topics
        elif self._configs(admin, self.destination, ConfigResource).get("message.timestamp.type") == "LogAppendTime":
            raise CopyError(
                f"{self.destination} stamps records with LogAppendTime: it cannot keep the source timestamps"
            )
        destination_partitions = len(topics[self.destination].partitions)
        result = CopyResult(self.source, self.destination, created, destination_partitions == source_partitions)
        if created:
            self._notice(result, f"created {self.destination} with {source_partitions} partitions (as {self.source})")
        if not result.same_partitioning:
            self._notice(
                result,
                f"{self.destination} has {destination_partitions} partitions, {self.source} {source_partitions}: "
                "keys are "
                "re-partitioned by the default partitioner (murmur2_random); per-key order is kept, partition numbers "
                "are not",
            )
        return result

    @staticmethod
    def _configs(admin, topic, ConfigResource) -> dict[str, str | None]:
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        entries = admin.describe_configs([resource], request_timeout=30)[resource].result()
        return {name: entry.value for name, entry in entries.items()}

    def _wait_visible(self, admin, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            topic = admin.list_topics(timeout=10).topics.get(self.destination)
            if (
                topic is not None
                and topic.error is None
                and topic.partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return
            time.sleep(0.1)
        raise CopyError(f"{self.destination} was created but has no leaders after {timeout_s:g}s")

    def _notice(self, result: CopyResult, text: str) -> None:
        result.notices.append(text)
        self.on_notice(text)

    # --- the copy ------------------------------------------------------------------------------------------------

    def _plan(self, consumer, result: CopyResult) -> tuple[dict[int, int], dict[int, int]]:
        from confluent_kafka import TopicPartition

        metadata = consumer.list_topics(self.source, timeout=10).topics[self.source]
        partitions = sorted(metadata.partitions)
        ends, lows = {}, {}
        for p in partitions:
            lows[p], ends[p] = consumer.get_watermark_offsets(TopicPartition(self.source, p), timeout=10)
        starts = dict(lows)
        if self.filter.from_ms is not None:
            found = consumer.offsets_for_times(
                [TopicPartition(self.source, p, self.filter.from_ms) for p in partitions], timeout=10
            )
            for tp in found:
                starts[tp.partition] = tp.offset if tp.offset >= 0 else ends[tp.partition]
        committed = consumer.committed([TopicPartition(self.source, p) for p in partitions], timeout=10)
        for tp in committed:
            if tp.offset >= 0:
                result.resumed[tp.partition] = tp.offset
                starts[tp.partition] = max(starts[tp.partition], tp.offset)
        if result.resumed:
            done = sum(max(0, min(o, ends[p]) - lows[p]) for p, o in result.resumed.items())
            self._notice(result, f"resuming a previous run of this copy: {done} source offsets were already covered")
        return starts, ends

    def _copy(self, consumer, producer, starts, ends, result: CopyResult) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        pending = {p for p in starts if starts[p] < ends[p]}
        reached = dict(starts)
        self.progress.start(sum(ends[p] - starts[p] for p in pending))
        if not pending:
            return
        consumer.assign([TopicPartition(self.source, p, starts[p]) for p in sorted(pending)])
        errors: list = []

        def delivered(err, _msg) -> None:
            if err is not None:
                errors.append(err)

        while pending:
            if self.stop.is_set():
                raise CopyInterrupted("copy interrupted; what was committed stays, a re-run resumes from there")
            messages = consumer.consume(num_messages=self.batch_size, timeout=0.5)
            records = []
            for message in messages:
                if message.error():
                    raise KafkaException(message.error())
                partition, offset = message.partition(), message.offset()
                if offset >= ends[partition]:
                    continue  # past the end seen at start: left for a later run
                _, timestamp = message.timestamp()
                headers = message.headers() or []
                if not self.filter.matches(timestamp, headers):
                    continue
                headers = [(k, v) for k, v in headers if k != SOURCE_HEADER]
                headers.append((SOURCE_HEADER, f"{self.source}:{partition}:{offset}".encode()))
                records.append((partition, message.key(), message.value(), headers, timestamp))
            commit, covered = [], 0
            for tp in consumer.position([TopicPartition(self.source, p) for p in sorted(pending)]):
                if tp.offset < 0:
                    continue
                position = min(tp.offset, ends[tp.partition])
                if position > reached[tp.partition]:
                    covered += position - reached[tp.partition]
                    reached[tp.partition] = position
                    commit.append(TopicPartition(self.source, tp.partition, position))
                if reached[tp.partition] >= ends[tp.partition]:
                    pending.discard(tp.partition)
                    consumer.pause([TopicPartition(self.source, tp.partition)])
            if records or commit:
                # one transaction: the copied records and the positions they were copied up to
                producer.begin_transaction()
                for partition, key, value, headers, timestamp in records:
                    extra = {"partition": partition} if result.same_partitioning else {}
                    producer.produce(
                        self.destination, key=key, value=value, headers=headers, timestamp=timestamp,
                        on_delivery=delivered, **extra,
                    )  # fmt: skip
                    producer.poll(0)
                producer.flush(30)
                if errors:
                    raise CopyError(f"copying to {self.destination} failed: {errors[0]}")
                if commit:
                    producer.send_offsets_to_transaction(commit, consumer.consumer_group_metadata(), 30)
                failpoints.point("copy_batch")  # inside the transaction, before its commit (tests)
                producer.commit_transaction(30)
            result.copied += len(records)
            result.examined += len(messages)
            self.progress.advance(covered, len(records))
        consumer.unassign()
