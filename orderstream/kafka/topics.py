"""Creating and verifying the pipeline's topics with confluent-kafka's AdminClient. Idempotent.

An existing topic is checked, never silently accepted: a wrong partition count, a wrong replication factor or a
wrong retention on an event topic is reported as a mismatch (and `ensure_topics` raises after reporting every topic).
"""

from __future__ import annotations

from dataclasses import dataclass

from orderstream.config import Settings
from orderstream.topology import TopicSpec, all_topics


@dataclass(frozen=True)
class TopicStatus:
    name: str
    state: str  # "created", "ok" or "mismatch"
    partitions: int
    detail: str = ""


class TopicsError(RuntimeError):
    """Some topics exist with settings the pipeline cannot work with."""

    def __init__(self, statuses: list[TopicStatus]) -> None:
        self.statuses = statuses
        bad = [s for s in statuses if s.state == "mismatch"]
        super().__init__("; ".join(f"{s.name}: {s.detail}" for s in bad))


def topic_exists(client, topic: str, timeout_s: float) -> bool:
    """Whether the cluster has `topic`, asked through any client's metadata (producer, consumer or admin). A missing
    topic comes back as an entry with an error (UNKNOWN_TOPIC_OR_PART), or none; raises KafkaException when the
    cluster does not answer."""
    metadata = client.list_topics(topic, timeout=timeout_s).topics.get(topic)
    return metadata is not None and metadata.error is None


def ensure_topics(
    settings: Settings, specs: tuple[TopicSpec, ...] | None = None, timeout_s: float = 30.0
) -> list[TopicStatus]:
    """Create every missing topic and verify the existing ones. Raises TopicsError on any mismatch."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    from orderstream.kafka.clients import admin_config

    specs = specs or all_topics()
    admin = AdminClient(admin_config(settings))
    existing = admin.list_topics(timeout=timeout_s).topics
    names = {spec.name: settings.topic(spec.name) for spec in specs}
    statuses: dict[str, TopicStatus] = {}

    to_create = [
        NewTopic(names[spec.name], settings.partitions, settings.replication_factor, config=spec.configs)
        for spec in specs
        if names[spec.name] not in existing
    ]
    if to_create:
        for name, future in admin.create_topics(to_create, request_timeout=timeout_s).items():
            try:
                future.result()
                statuses[name] = TopicStatus(name, "created", settings.partitions)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        existing = _wait_until_visible(admin, [t.topic for t in to_create], timeout_s)

    to_check = [spec for spec in specs if names[spec.name] not in statuses]
    retention = _retentions(admin, [names[s.name] for s in to_check], timeout_s, ConfigResource) if to_check else {}
    for spec in to_check:
        name = names[spec.name]
        partitions = len(existing[name].partitions)
        problems = []
        if partitions != settings.partitions:
            problems.append(f"has {partitions} partitions, expected {settings.partitions}")
        replicas = _replication_factor(existing[name])
        if replicas is not None and replicas != settings.replication_factor:
            problems.append(f"has replication factor {replicas}, expected {settings.replication_factor}")
        if spec.retention_ms == -1 and retention.get(name) != "-1":
            problems.append(f"retention.ms is {retention.get(name)}, expected -1 (events are kept forever)")
        statuses[name] = TopicStatus(name, "mismatch" if problems else "ok", partitions, ", ".join(problems))

    ordered = [statuses[names[spec.name]] for spec in specs]
    if any(s.state == "mismatch" for s in ordered):
        raise TopicsError(ordered)
    return ordered


def _replication_factor(topic) -> int | None:
    """A topic's replication factor: the fewest replicas any of its partitions has. Read from the metadata
    list_topics already returned, so checking it costs no request."""
    counts = [len(partition.replicas) for partition in topic.partitions.values()]
    return min(counts) if counts else None


def _retentions(admin, names: list[str], timeout_s: float, ConfigResource) -> dict[str, str]:
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    result = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout_s).items():
        entry = future.result().get("retention.ms")
        result[resource.name] = entry.value if entry is not None else None
    return result


def _wait_until_visible(admin, names: list[str], timeout_s: float):
    """Created topics are usable once every partition has a leader in the broker's metadata."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        ready = all(
            name in topics
            and topics[name].error is None
            and topics[name].partitions
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        )
        if ready or time.monotonic() > deadline:
            return topics
        time.sleep(0.1)
