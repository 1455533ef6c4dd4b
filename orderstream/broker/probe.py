"""Asking a cluster about itself: does it answer, which nodes, which topics, which Kafka version."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from orderstream.broker.distribution import KafkaDistribution
from orderstream.kafka.clients import KafkaAuthenticationError


def broker_answers(bootstrap: str, timeout_s: float = 2.0, extra: dict[str, Any] | None = None) -> bool:
    """True when a metadata request to bootstrap gets an answer naming at least one broker."""
    config = {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000, "log_level": 0}
    config.update(extra or {})
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)


@dataclass
class ClusterInfo:
    bootstrap: str
    cluster_id: str | None
    nodes: dict[int, str]
    controller_id: int | None
    topics: list[str]
    kafka_version: str | None = None
    features: dict[str, str] = field(default_factory=dict)


def describe_cluster(admin_config: dict[str, Any], timeout_s: float = 5.0) -> ClusterInfo:
    """Metadata of the cluster; raises KafkaException when it does not answer."""
    admin = AdminClient(admin_config)
    metadata = admin.list_topics(timeout=timeout_s)
    return ClusterInfo(
        bootstrap=admin_config["bootstrap.servers"],
        cluster_id=metadata.cluster_id,
        nodes={node_id: f"{b.host}:{b.port}" for node_id, b in sorted(metadata.brokers.items())},
        controller_id=metadata.controller_id,
        topics=sorted(t for t in metadata.topics if not t.startswith("__")),
    )


def reported_features(bootstrap: str, java: str, distribution: KafkaDistribution) -> dict[str, str]:
    """The finalized feature levels the cluster reports (DescribeFeatures, via Kafka's own FeatureCommand).

    metadata.version (e.g. 4.1-IV1) is the Apache Kafka release line the cluster runs.
    """
    result = subprocess.run(
        [
            java,
            "-cp",
            distribution.classpath,
            "org.apache.kafka.tools.FeatureCommand",
            "--bootstrap-server",
            bootstrap,
            "describe",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    features = {}
    for line in result.stdout.splitlines():
        match = re.search(r"Feature:\s*(\S+).*FinalizedVersionLevel:\s*(\S+)", line)
        if match:
            features[match.group(1)] = match.group(2)
    return features


def kafka_release(features: dict[str, str]) -> str | None:
    """'4.1' from metadata.version '4.1-IV1'."""
    level = features.get("metadata.version")
    return level.split("-")[0] if level else None


class ClusterUnreachable(RuntimeError):
    """The cluster does not answer, or refuses our credentials; the message says which and what to do."""


def check_connection(client_config: dict[str, Any], timeout_s: float = 5.0) -> None:
    """Return as soon as the cluster answers a metadata request; raise ClusterUnreachable with the reason otherwise.

    A refused login is reported at once (librdkafka's error callback, served by poll), not after the timeout.
    """
    producer = Producer(client_config)
    deadline = time.monotonic() + timeout_s
    bootstrap = client_config["bootstrap.servers"]
    try:
        while time.monotonic() < deadline:
            producer.poll(0.05)
            try:
                if producer.list_topics(timeout=0.25).brokers:
                    return
            except KafkaException:
                continue
    except KafkaAuthenticationError as exc:
        raise ClusterUnreachable(f"{bootstrap}: {exc}") from None
    raise ClusterUnreachable(
        f"no broker answers at {bootstrap}: start one with `orderstream broker start`, or pass -b HOST:PORT "
        "(or set ORDERSTREAM_BOOTSTRAP_SERVERS)"
    )
