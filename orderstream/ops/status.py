"""`orderstream status`: for every service and projection, its lag per partition, the age of the last event it
applied, whether it runs, and what state that adds up to; plus the broker's and the topics' health.

Positions come from where each consumer keeps them: a projection's own database (the source of truth for a view),
a processor's committed offsets in Kafka. End offsets are read_committed (the last stable offset), so transaction
markers and open transactions never show up as lag.

Kafka's own tool (kafka-consumer-groups, ConsumerGroupCommand) counts from the high watermark instead: a transaction's
commit marker takes an offset, so a transactional consumer that is caught up shows lag 1 there. Each row carries that
number too (kafka_lag) and, where the two differ, why (lag_note): transaction markers or aborted records, an open
transaction, or a view whose position is not yet committed to Kafka.

States: idle (caught up), catching-up (behind, and its position moved during the sample), stuck (behind, running,
and its position did not move during the sample), stopped (no live member in its group).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from orderstream.config import Settings

Position = tuple[str, int]


@dataclass(frozen=True)
class WatchedConsumer:
    """A consumer status reports on. stored_positions None means: its committed offsets in Kafka."""

    name: str
    kind: str  # "service" or "projection"
    group: str
    topics: tuple[str, ...]  # logical names, without the topic prefix
    stored_positions: Callable[[], dict[Position, int]] | None = None


@dataclass
class PartitionStatus:
    name: str
    kind: str
    group: str
    topic: str
    partition: int
    position: int | None
    end: int
    lag: int
    last_event_age_s: float | None
    running: bool
    state: str = ""
    members: int = 0  # live members of its consumer group: 2 on one data directory means a second copy runs
    # The lag Kafka's own tools show (kafka-consumer-groups --describe: high watermark - the group's committed offset;
    # None when the group committed nothing), and why it differs from `lag`, which counts only records still to do.
    kafka_lag: int | None = None
    lag_note: str = ""


@dataclass
class StatusReport:
    consumers: list[PartitionStatus]
    broker: dict = field(default_factory=dict)
    topics: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"consumers": [asdict(c) for c in self.consumers], "broker": self.broker, "topics": self.topics}


class StatusUnavailable(RuntimeError):
    """The broker could not answer a question status must ask; the message says which and why."""


class NoTopics(StatusUnavailable):
    """None of the pipeline's topics exist under the settings' prefix: there is nothing to report on."""


def collect_status(settings: Settings, watched: list[WatchedConsumer], sample_s: float = 1.5) -> StatusReport:
    from confluent_kafka import Consumer, IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    from orderstream.kafka.clients import admin_config, consumer_config
    from orderstream.topology import all_topics

    admin = AdminClient(admin_config(settings))
    metadata = admin.list_topics(timeout=10)
    _require_topics(settings, metadata.topics, [spec.name for spec in all_topics()])
    partitions = {
        name: sorted(metadata.topics[settings.topic(name)].partitions)
        for w in watched
        for name in w.topics
        if settings.topic(name) in metadata.topics
    }
    members = _group_members(admin, [w.group for w in watched])
    tps = [TopicPartition(settings.topic(t), p) for t, ps in partitions.items() for p in ps]
    ends = _offsets(admin, tps, OffsetSpec.latest(), IsolationLevel.READ_COMMITTED) if tps else {}
    starts = _offsets(admin, tps, OffsetSpec.earliest(), IsolationLevel.READ_COMMITTED) if tps else {}
    watermarks = _offsets(admin, tps, OffsetSpec.latest(), IsolationLevel.READ_UNCOMMITTED) if tps else {}

    reader = Consumer(consumer_config(settings, f"orderstream.status.{uuid.uuid4().hex[:8]}"))
    try:
        first = {w.name: _positions(admin, w, tps) for w in watched}
        committed = {
            w.name: first[w.name] if w.stored_positions is None else _committed_offsets(admin, w.group, w.topics, tps)
            for w in watched
        }
        now_ms = time.time() * 1000
        wanted = {(t, p, o) for positions in first.values() for (t, p), o in positions.items()}
        applied, remaining = _scan(reader, wanted, ends)
        rows: list[PartitionStatus] = []
        for w in watched:
            for topic in w.topics:
                full = settings.topic(topic)
                for p in partitions.get(topic, []):
                    position = first[w.name].get((full, p))
                    end = ends.get((full, p), 0)
                    effective = position if position is not None else starts.get((full, p), 0)
                    stamp = applied.get((full, p, position))
                    lag = remaining.get((full, p, position), max(0, end - effective))
                    in_kafka = committed[w.name].get((full, p))
                    watermark = max(end, watermarks.get((full, p), end))
                    kafka_lag = None if in_kafka is None else max(0, watermark - in_kafka)
                    rows.append(
                        PartitionStatus(
                            name=w.name,
                            kind=w.kind,
                            group=w.group,
                            topic=full,
                            partition=p,
                            position=position,
                            end=end,
                            lag=lag,
                            kafka_lag=kafka_lag,
                            lag_note=lag_difference(lag, position, end, watermark, in_kafka),
                            running=members.get(w.group, 0) > 0,
                            members=members.get(w.group, 0),
                            last_event_age_s=None if stamp is None else round(max(0.0, now_ms - stamp) / 1000, 1),
                        )
                    )
        behind = {r.name for r in rows if r.lag > 0 and r.running}
        moved: set[tuple[str, str, int]] = set()
        if behind and sample_s > 0:
            time.sleep(sample_s)
            for w in watched:
                if w.name in behind:
                    again = _positions(admin, w, tps)
                    moved |= {(w.name, t, p) for (t, p), o in again.items() if o != first[w.name].get((t, p))}
        for row in rows:
            if not row.running:
                row.state = "stopped"
            elif row.lag == 0:
                row.state = "idle"
            else:
                row.state = "catching-up" if (row.name, row.topic, row.partition) in moved else "stuck"
    finally:
        reader.close()

    topic_rows = []
    for spec in all_topics():
        full = settings.topic(spec.name)
        meta = metadata.topics.get(full)
        if meta is None or meta.error is not None:
            topic_rows.append({"topic": full, "health": "missing"})
            continue
        under = [p.id for p in meta.partitions.values() if len(p.isrs) < len(p.replicas)]
        offline = [p.id for p in meta.partitions.values() if p.leader < 0]
        health = "offline partitions" if offline else "under-replicated" if under else "ok"
        topic_rows.append(
            {
                "topic": full,
                "health": health,
                "partitions": len(meta.partitions),
                "under_replicated": under,
                "offline": offline,
            }
        )
    broker = {
        "bootstrap": settings.effective_bootstrap,
        "cluster_id": metadata.cluster_id,
        "nodes": sorted(metadata.brokers),
        "controller": metadata.controller_id,
    }
    return StatusReport(rows, broker, topic_rows)


def _require_topics(settings: Settings, existing, names: list[str]) -> None:
    """Raise NoTopics when not one of the pipeline's topics exists (a prefix never initialised, a wrong prefix or
    cluster): there are then no partitions to ask offsets for, and the AdminClient refuses an empty list."""
    if any(settings.topic(name) in existing for name in names):
        return
    prefix = f" with prefix {settings.topic_prefix!r}" if settings.topic_prefix else ""
    raise NoTopics(
        f"no orderstream topics{prefix} exist at {settings.effective_bootstrap}: create them with "
        "`orderstream topics init` (with the same --topic-prefix), or check the prefix and the cluster"
    )


def _group_members(admin, groups: list[str], attempts: int = 10) -> dict[str, int]:
    """The number of live members per consumer group. A group the broker does not know has 0; a passing answer (the
    group's coordinator still loading or moving, e.g. right after the broker started) is asked again, 0.5 s apart, for
    up to ~5 s; any other failure to describe a group raises StatusUnavailable: "stopped" must mean stopped, not "could
    not ask"."""
    from confluent_kafka import KafkaError, KafkaException

    passing = {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
    }
    counts = dict.fromkeys(groups, 0)
    pending = sorted(set(groups))
    for attempt in range(1, attempts + 1):
        retry = []
        for group, future in admin.describe_consumer_groups(pending, request_timeout=10).items():
            try:
                counts[group] = len(future.result().members)
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is not None and error.code() == KafkaError.GROUP_ID_NOT_FOUND:
                    continue
                if error is not None and (error.code() in passing or error.retriable()) and attempt < attempts:
                    retry.append(group)
                    continue
                raise StatusUnavailable(f"could not ask the broker whether consumer group {group} runs: {exc}") from exc
        if not retry:
            break
        pending = retry
        time.sleep(0.5)
    return counts


def _offsets(admin, tps, spec, isolation, timeout_s: float = 15.0) -> dict[Position, int]:
    """Offsets per partition, retrying while a partition's leader is not known yet (a topic just created, a leader
    moving)."""
    from confluent_kafka import KafkaException

    from orderstream.kafka.offsets import is_transient

    deadline = time.monotonic() + timeout_s
    while True:
        futures = admin.list_offsets(dict.fromkeys(tps, spec), isolation_level=isolation, request_timeout=10)
        try:
            return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
        except KafkaException as exc:
            if not is_transient(exc.args[0]) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def lag_difference(lag: int, position: int | None, lso: int, watermark: int, committed: int | None) -> str:
    """Why Kafka's lag (watermark - committed) differs from ours (the data records from position to the last stable
    offset), as the three parts that make up the difference; "" when they agree or Kafka has no committed offset."""
    if committed is None or position is None:
        return ""
    open_txn = watermark - lso  # records of transactions not yet decided (and their coming markers)
    not_committed = position - committed  # a view's position in its own database ahead of its Kafka commit
    markers = (watermark - committed) - lag - open_txn - not_committed  # markers and aborted records before the LSO
    parts = [
        (markers, "transaction marker(s) or aborted record(s)"),
        (open_txn, "in an open transaction"),
        (not_committed, "applied but not yet committed to Kafka"),
    ]
    return "; ".join(f"{n:+d} {why}" for n, why in parts if n)


def _positions(admin, watched: WatchedConsumer, tps) -> dict[Position, int]:
    """Where a consumer is: its stored positions (a projection's database) or its group's committed offsets. No
    position yet is an empty dict; a failure to find out raises StatusUnavailable (never read as "nothing applied")."""
    if watched.stored_positions is not None:
        from sqlalchemy.exc import SQLAlchemyError

        from orderstream.views.store import StoreError

        try:
            return watched.stored_positions()
        except (StoreError, SQLAlchemyError) as exc:
            raise StatusUnavailable(f"could not read how far {watched.name} is from its database: {exc}") from exc
    return _committed_offsets(admin, watched.group, watched.topics, tps)


def _committed_offsets(admin, group: str, topics: tuple[str, ...], tps) -> dict[Position, int]:
    """The group's committed offsets in Kafka (what Kafka's tools count lag from)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException

    wanted = [tp for tp in tps if any(tp.topic.endswith(t) for t in topics)]
    if not wanted:  # none of its topics exist: no offsets, and the AdminClient refuses an empty list
        return {}
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, wanted)])[group]
    try:
        result = future.result()
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is not None and error.code() == KafkaError.GROUP_ID_NOT_FOUND:
            return {}  # the group never committed
        raise StatusUnavailable(f"could not ask the broker where consumer group {group} is: {exc}") from exc
    # a partition without a committed offset reads as OFFSET_INVALID (-1001): no position yet
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def _scan(reader, wanted: set[tuple[str, int, int]], ends: dict[Position, int], max_scan: int = 5_000):
    """One read_committed pass per partition from a little before the lowest position wanted (transaction markers
    take offsets too) towards the end offset, at most max_scan records.

    Returns (applied, pending): for each (topic, partition, position), the timestamp (ms) of the last data record
    before the position, and the exact number of data records from the position to the end when the pass reached
    the end (markers and aborted records are not lag). Positions the pass did not reach are left out of both.
    """
    from confluent_kafka import TopicPartition

    by_partition: dict[Position, list[int]] = {}
    for topic, partition, position in wanted:
        by_partition.setdefault((topic, partition), []).append(position)
    if not by_partition:
        return {}, {}
    reader.assign([TopicPartition(t, p, max(0, min(ps) - 4)) for (t, p), ps in by_partition.items()])
    seen: dict[Position, list[tuple[int, int]]] = {tp: [] for tp in by_partition}
    complete: set[Position] = set()
    pending = set(by_partition)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        for message in reader.consume(1000, timeout=0.2):
            tp = (message.topic(), message.partition())
            if message.error() is None and tp in pending:
                seen[tp].append((message.offset(), message.timestamp()[1]))
                if len(seen[tp]) >= max_scan:
                    pending.discard(tp)
        for tp in list(pending):
            if reader.position([TopicPartition(*tp)])[0].offset >= ends.get(tp, 0):
                pending.discard(tp)
                complete.add(tp)
    applied, remaining = {}, {}
    for tp, positions in by_partition.items():
        for position in positions:
            before = [ts for offset, ts in seen[tp] if offset < position]
            if before:
                applied[(*tp, position)] = before[-1]
            if tp in complete:
                remaining[(*tp, position)] = sum(1 for offset, _ in seen[tp] if offset >= position)
    return applied, remaining
