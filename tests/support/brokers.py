"""Test brokers: real Apache Kafka started from the Maven-fetched jars on free ports in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

from orderstream.broker.daemon import free_port
from orderstream.broker.distribution import KafkaDistribution
from orderstream.broker.local import BrokerSpec, LocalBroker
from orderstream.config import load_settings


def start_test_broker(home: Path, heap: str = "1g", extra: tuple[tuple[str, str], ...] = ()) -> LocalBroker:
    """Start a single-node KRaft broker on free ports; the caller stops it."""
    settings = load_settings()
    spec = BrokerSpec(
        home=home,
        port=free_port(),
        controller_port=free_port(),
        heap=os.environ.get("ORDERSTREAM_TEST_BROKER_HEAP", heap),
        log_level="WARN",
        extra_properties=extra,
    )
    broker = LocalBroker(spec, KafkaDistribution(settings.kafka_version, settings.cache_dir), settings.java_home)
    broker.start(timeout_s=120)
    return broker
