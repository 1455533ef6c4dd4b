"""The broker stops answering (SIGSTOP) in the middle of a transaction's commit, for longer than the processor's Kafka
timeout: the commit times out, goes on in the background, and is called again (librdkafka's advice) rather than
aborted - aborting it would conflict with the commit in flight and stop the service. The order is placed once."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest
from confluent_kafka import Producer

from orderstream.config import load_settings
from orderstream.domain.events import OrderPlaced
from orderstream.kafka.topics import ensure_topics
from orderstream.producers.commands import CommandSender
from orderstream.runtime import processor as processor_module
from orderstream.topology import ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES
from tests.support.brokers import start_test_broker
from tests.support.orders import place_order, read_topic, running_order_service

pytestmark = pytest.mark.slow

TIMEOUT_S = 3.0  # the processor's Kafka timeout in this test (30 s in production)
PAUSE_S = 7.0  # the broker sleeps through two commit attempts


class _PausingProducer:
    """The processor's real producer; its first commit_transaction first freezes the broker for PAUSE_S."""

    def __init__(self, producer, broker_pid: int, paused: threading.Event) -> None:
        self._producer, self._pid, self._paused = producer, broker_pid, paused

    def __getattr__(self, name):
        return getattr(self._producer, name)

    def commit_transaction(self, *args):
        if not self._paused.is_set():
            self._paused.set()
            os.kill(self._pid, signal.SIGSTOP)
            threading.Timer(PAUSE_S, os.kill, (self._pid, signal.SIGCONT)).start()
        return self._producer.commit_transaction(*args)


def test_a_commit_that_outlasts_its_timeout_is_resumed_and_the_order_placed_once(
    tmp_path, kafka_bootstrap, monkeypatch, caplog
):
    broker = start_test_broker(tmp_path / "broker", heap="384m")
    try:
        settings = load_settings(
            bootstrap_servers=broker.spec.bootstrap, topic_prefix="bp.", data_dir=tmp_path / "data", partitions=1
        )
        ensure_topics(settings)
        monkeypatch.setattr(processor_module, "KAFKA_TIMEOUT_S", TIMEOUT_S)
        paused = threading.Event()
        caplog.set_level(logging.WARNING, logger=processor_module.__name__)
        with (
            running_order_service(
                settings, producer_factory=lambda config: _PausingProducer(Producer(config), broker.pid(), paused)
            ) as service,
            CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send,
        ):
            service.wait_owned(lambda owned: owned == {0})
            outcome = send.send_and_wait(place_order("o-pause-1", command_id="pause-cmd"), timeout_s=60)
            assert paused.is_set(), "the broker was never paused in a commit"
            assert outcome.reply is not None and outcome.reply.accepted, outcome
            assert service.thread.is_alive() and service.error is None, service.error
        events = [e for _, e in read_topic(settings, ORDERS_EVENTS, until=lambda got: len(got) >= 1)]
        assert [(type(e), e.order_id) for e in events] == [(OrderPlaced, "o-pause-1")]
        assert any("calling it again" in r.getMessage() for r in caplog.records), [
            r.getMessage() for r in caplog.records
        ]
    finally:
        pid = broker.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        broker.stop()
