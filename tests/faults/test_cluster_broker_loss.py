"""A three-broker local KRaft cluster (replication factor 3, min.insync.replicas 2): one broker is killed with
SIGKILL during load. Nothing acknowledged is lost, nothing is applied twice, and the pipeline keeps going."""

from __future__ import annotations

import time

import pytest

from orderstream.broker.cluster import LocalCluster
from orderstream.broker.distribution import KafkaDistribution
from orderstream.config import load_settings
from orderstream.kafka.topics import ensure_topics
from tests.support.history import History
from tests.support.pipeline import LoadDriver, ServiceProcess, observe_events, observe_order_view, wait_joined

pytestmark = pytest.mark.slow


def test_losing_one_of_three_brokers_loses_nothing(tmp_path, kafka_bootstrap):
    defaults = load_settings()
    cluster = LocalCluster(
        tmp_path / "cluster", KafkaDistribution(defaults.kafka_version, defaults.cache_dir), heap="320m"
    )
    cluster.start()
    try:
        settings = load_settings(
            bootstrap_servers=cluster.bootstrap,
            topic_prefix="c3.",
            data_dir=tmp_path / "data",
            partitions=3,
            replication_factor=3,
        )
        ensure_topics(settings)
        history = History()
        env = {"ORDERSTREAM_INSTANCE_ID": "cluster-test"}
        services = [ServiceProcess(settings, n, tmp_path / f"{n}.log", env).start() for n in ("order", "projections")]
        driver = LoadDriver(settings, history, rate=60).start()
        try:
            wait_joined(services)  # running (a process per view starts in seconds), then a broker goes
            time.sleep(2)
            cluster.brokers[1].kill()
            time.sleep(8)
            driver.stop()
            acknowledged = set(driver.acknowledged)
            assert not driver.failed, driver.failed[:3]
            assert len(acknowledged) > 400
            try:
                observe_events(settings, history, len(acknowledged), timeout_s=120)
                observe_order_view(settings, history, acknowledged, timeout_s=120)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n" + "\n".join(s.tail() for s in services)) from None
            for service in services:
                assert service.alive(), service.tail()
        finally:
            codes = [s.stop() for s in services]
    finally:
        cluster.stop()
    anomalies = history.check(rows_must_be_current=True)
    assert anomalies.clean, anomalies.summary()
    assert codes == [0, 0]
