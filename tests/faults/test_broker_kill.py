"""The broker is killed with SIGKILL and restarted while orders are being placed and projected: nothing that was
acknowledged is lost, nothing is applied twice, no aborted data is read, and the services ride out the outage."""

from __future__ import annotations

import time

import pytest

from orderstream.config import load_settings
from orderstream.kafka.topics import ensure_topics
from tests.support.brokers import start_test_broker
from tests.support.history import History
from tests.support.pipeline import LoadDriver, ServiceProcess, observe_events, observe_order_view, wait_joined

pytestmark = pytest.mark.slow


def test_broker_sigkill_and_restart_during_load(tmp_path, kafka_bootstrap):
    broker = start_test_broker(tmp_path / "broker", heap="384m")
    settings = load_settings(
        bootstrap_servers=broker.spec.bootstrap, topic_prefix="bk.", data_dir=tmp_path / "data", partitions=3
    )
    ensure_topics(settings)
    history = History()
    env = {"ORDERSTREAM_INSTANCE_ID": "fault-test"}
    services = [
        ServiceProcess(settings, name, tmp_path / f"{name}.log", env).start() for name in ("order", "projections")
    ]
    driver = LoadDriver(settings, history, rate=80).start()
    try:
        wait_joined(services)  # running (a process per view starts in seconds on 2 cores), then the outage
        time.sleep(2)
        broker.kill()
        time.sleep(3)
        broker.start(timeout_s=120)
        time.sleep(5)
        driver.stop()
        acknowledged = set(driver.acknowledged)
        assert len(acknowledged) > 300, f"only {len(acknowledged)} orders acknowledged; failures: {driver.failed[:3]}"
        try:
            observe_events(settings, history, len(acknowledged))
            observe_order_view(settings, history, acknowledged)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n" + "\n".join(f"--- {s.name}:\n{s.tail()}" for s in services)) from None
        for service in services:
            assert service.alive(), f"{service.name} died during the outage:\n{service.tail()}"
    finally:
        codes = {service.name: service.stop() for service in services}
        broker.stop()
    anomalies = history.check(rows_must_be_current=True)
    assert anomalies.clean, anomalies.summary()
    assert codes == {"order": 0, "projections": 0}, {s.name: s.tail() for s in services}
