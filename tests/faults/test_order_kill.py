"""SIGKILL the order processor (a real `orderstream run order` process) in the middle of a stream of commands,
restart it, and check that a read_committed reader sees every accepted command's events exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from orderstream.domain.events import OrderCancelled, OrderPlaced
from orderstream.producers.commands import CommandSender
from orderstream.topology import ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES
from tests.support.orders import cancel_order, events_by_order, place_order, read_topic


def start_processor(settings, log: Path) -> subprocess.Popen:
    env = os.environ | {"ORDERSTREAM_BATCH_SIZE": "4"}  # many small transactions: the kill lands between or inside one
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            settings.effective_bootstrap,
            "--topic-prefix",
            settings.topic_prefix,
            "--data-dir",
            str(settings.data_dir),
            "run",
            "order",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
        env=env,
    )


def wait_for_log(log: Path, text: str, count: int = 1, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while log.read_text().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(topics, tmp_path):
    log = tmp_path / "processor.log"
    log.touch()
    orders = [f"o-kill-{i:02d}" for i in range(40)]
    commands = [c for order_id in orders for c in (place_order(order_id), cancel_order(order_id, expected_version=1))]

    processor = start_processor(topics, log)
    try:
        wait_for_log(log, "assigned partitions")
        with CommandSender(topics, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send:
            for command in commands[: len(commands) // 2]:
                send.send(command)
            wait_for_log(log, "committed in", count=3)
            processor.send_signal(signal.SIGKILL)
            processor.wait(10)
            killed_at = log.read_text().count("committed in")
            for command in commands[len(commands) // 2 :]:
                send.send(command)
        processor = start_processor(topics, log)
        expected_ids = {c.command_id for c in commands}
        try:
            replies = [
                r
                for _, r in read_topic(
                    topics,
                    ORDERS_REPLIES,
                    timeout_s=45,
                    until=lambda rs: expected_ids <= {r.command_id for r in rs},
                )
            ]
        except AssertionError as exc:
            raise AssertionError(f"{exc}; processor log:\n{log.read_text()[-4000:]}") from None
    finally:
        processor.send_signal(signal.SIGTERM)
        assert processor.wait(30) == 0, log.read_text()[-3000:]

    assert killed_at < len(commands) // 4, "the kill happened while commands were still waiting"
    per_command = Counter(r.command_id for r in replies)
    assert all(per_command[c] == 1 for c in expected_ids), "one committed reply per command"
    assert all(r.accepted for r in replies), [r.reason for r in replies if not r.accepted]

    events = [e for _, e in read_topic(topics, ORDERS_EVENTS)]
    assert len({e.event_id for e in events}) == len(events) == 2 * len(orders)
    for order_id, stream in events_by_order(events).items():
        assert [(type(e), e.version) for e in stream] == [(OrderPlaced, 1), (OrderCancelled, 2)], order_id
    assert Counter(e.causation_id for e in events).keys() == expected_ids
    # what the kill left behind (an aborted transaction, when it hit one) only repeats committed positions
    uncommitted = [e for _, e in read_topic(topics, ORDERS_EVENTS, isolation="read_uncommitted")]
    assert len(uncommitted) >= len(events)
    assert {(e.order_id, e.version) for e in uncommitted} == {(e.order_id, e.version) for e in events}
    assert "stopped" in log.read_text()
