"""Registry mode under kill -9: the order processor, writing the Confluent wire format through the session's Apicurio
Registry, SIGKILLed twice mid-stream (commands arrive single-object encoded, so it reads both encodings too): after
the last restart every acknowledged command has its events exactly once, in the Confluent format, with no gaps."""

from __future__ import annotations

import random
import time

import pytest

from tests.support.history import History
from tests.support.orders import read_topic
from tests.support.pipeline import LoadDriver, ServiceProcess, observe_events

pytestmark = pytest.mark.slow


def test_sigkill_of_the_order_processor_in_registry_mode(registry_settings, tmp_path):
    from orderstream.kafka.topics import ensure_topics

    settings = registry_settings
    ensure_topics(settings)
    history = History()
    env = {"ORDERSTREAM_BATCH_SIZE": "8", "ORDERSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url}
    log = tmp_path / "order.log"
    processor = ServiceProcess(settings, "order", log, env).start()
    driver = LoadDriver(settings, history, rate=100).start()
    rng = random.Random(19)
    try:
        for _ in range(2):
            time.sleep(rng.uniform(2.0, 3.5))
            processor.kill()
            processor = ServiceProcess(settings, "order", log, env).start()
        time.sleep(2)
        driver.stop()
        assert not driver.failed, driver.failed[:3]
        try:
            observe_events(settings, history, len(driver.acknowledged), timeout_s=120)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{processor.tail()}") from None
    finally:
        code = processor.stop()
    anomalies = history.check()
    assert anomalies.clean, anomalies.summary()
    assert len(driver.acknowledged) > 200
    assert code == 0, processor.tail()
    assert {record.value()[:1] for record, _ in read_topic(settings, "orders.events")} == {b"\x00"}
