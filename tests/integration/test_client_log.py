"""With no broker answering, the real clients' connection errors reach the log once per broker per interval, not once
per reconnect attempt (dozens a second per client)."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, Producer

from orderstream.broker.daemon import free_port
from orderstream.config import load_settings
from orderstream.kafka.clients import consumer_config, producer_config


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_connection_errors_to_an_absent_broker_are_one_line_per_broker(tmp_path):
    settings = load_settings(bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=tmp_path)  # nothing listens
    logger = logging.getLogger("librdkafka")
    collect, level = Collect(), logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.WARNING)
    clients = [Consumer(consumer_config(settings, f"g{i}")) for i in range(3)] + [Producer(producer_config(settings))]
    try:
        clients[0].subscribe(["absent"])
        began = time.monotonic()
        while time.monotonic() - began < 4:
            for client in clients:
                client.poll(0.05)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
        for client in clients:
            if isinstance(client, Consumer):
                client.close()
    refused = [line for line in collect.lines if "Connect to" in line]
    assert len(refused) == 1, collect.lines  # four clients retrying for 4 s: one line
    assert all(settings.bootstrap_servers in line for line in refused)
