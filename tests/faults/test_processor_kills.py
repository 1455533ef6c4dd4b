"""The order processor SIGKILLed again and again mid-stream (often inside a transaction): after the last restart every
acknowledged command has its events exactly once, versions have no gaps, and no aborted write is ever read."""

from __future__ import annotations

import random
import time

import pytest

from tests.support.history import History
from tests.support.pipeline import LoadDriver, ServiceProcess, observe_events

pytestmark = pytest.mark.slow


def test_repeated_sigkill_of_the_order_processor(topics, tmp_path):
    history = History()
    env = {"ORDERSTREAM_BATCH_SIZE": "8"}  # many small transactions, so kills land inside them
    processor = ServiceProcess(topics, "order", tmp_path / "order.log", env).start()
    driver = LoadDriver(topics, history, rate=120).start()
    rng = random.Random(11)
    kills = 0
    try:
        for _ in range(4):
            time.sleep(rng.uniform(1.5, 3.0))
            processor.kill()
            kills += 1
            processor = ServiceProcess(topics, "order", tmp_path / "order.log", env).start()
        time.sleep(2)
        driver.stop()
        assert not driver.failed, driver.failed[:3]
        try:
            observe_events(topics, history, len(driver.acknowledged), timeout_s=120)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{processor.tail()}") from None
    finally:
        code = processor.stop()
    anomalies = history.check()
    assert anomalies.clean, anomalies.summary()
    assert kills == 4 and len(driver.acknowledged) > 500
    assert code == 0, processor.tail()
