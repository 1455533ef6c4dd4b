"""Prometheus metrics of a running pipeline: `orderstream run order projections --metrics-port P` (a supervisor and two
child processes, one scrape target through prometheus-client's multiprocess mode), scraped after a known load.

The counts must agree with the load: N PlaceOrder commands sent = N records the order service took from
orders.commands = N OrderPlaced events the order view applied; the view's end-to-end histogram holds them.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from orderstream.kafka.clients import producer_config
from orderstream.producers.commands import CommandSender
from orderstream.topology import ORDERS_COMMANDS, ORDERS_REPLIES, PAYMENTS_EVENTS
from tests.support.orders import place_order

ORDERS = 12
ORDER_ID_PREFIX = "metrics-oid-"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample on /metrics as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def _has(samples: dict, name: str, **labels: str) -> bool:
    wanted = set(labels.items())
    return any(n == name and wanted <= set(ls) for (n, ls) in samples)


@pytest.fixture
def pipeline(topics, tmp_path: Path):
    port = _free_port()
    log = tmp_path / "run.log"
    s = topics
    args = ["-b", s.effective_bootstrap, "--topic-prefix", s.topic_prefix, "--data-dir", str(s.data_dir)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orderstream.cli.main",
                *args,
                "run",
                "order",
                "projections",
                "--metrics-port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            _scrape(port)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the pipeline's /metrics never answered:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
    yield port, process, log
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_counts_on_metrics_agree_with_the_load_across_the_process_tree(topics, pipeline):
    port, process, log = pipeline
    with CommandSender(topics, ORDERS_COMMANDS, ORDERS_REPLIES) as sender:
        for _ in range(ORDERS):
            sender.send(place_order(f"{ORDER_ID_PREFIX}{uuid.uuid4().hex[:12]}"))
    garbage = Producer(producer_config(topics))  # one undecodable record on an input of the order service
    garbage.produce(topics.topic(PAYMENTS_EVENTS), key=b"garbage", value=b"not avro")
    assert garbage.flush(10) == 0

    deadline = time.monotonic() + 180  # generous: the CI machine may be busy
    samples = _scrape(port)
    while (
        _total(samples, "orderstream_view_events_applied_total", view="order-view", type="OrderPlaced") < ORDERS
        # the projector reports its lag once the consumer thread has settled the writer's batch
        or not _has(samples, "orderstream_consumer_lag_records", consumer="order-view", topic="orders.events")
        or not _has(samples, "orderstream_dead_letters_total", consumer="order", topic="payments.events")
        # a letter is counted when it is written, the records in when their batch commits: wait for the commit
        or _total(samples, "orderstream_processor_records_in_total", service="order", topic="payments.events") < 1
    ):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the order view never applied {ORDERS} OrderPlaced; log:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
        samples = _scrape(port)

    # orders placed = commands the order service took = OrderPlaced the order view applied
    took = _total(samples, "orderstream_processor_records_in_total", service="order", topic="orders.commands")
    applied = _total(samples, "orderstream_view_events_applied_total", view="order-view", type="OrderPlaced")
    assert took == ORDERS
    assert applied == ORDERS
    assert _total(samples, "orderstream_processor_events_out_total", service="order", stage="order") >= ORDERS
    assert _total(samples, "orderstream_processor_batches_total", service="order") >= 1
    assert _total(samples, "orderstream_processor_batch_duration_seconds_count", service="order") >= 1
    assert _total(samples, "orderstream_processor_transaction_commit_duration_seconds_count", service="order") >= 1
    # every OrderPlaced (and the other events of the order view's topics) landed in the end-to-end histogram
    assert _total(samples, "orderstream_view_end_to_end_age_seconds_count", view="order-view") >= ORDERS
    assert _total(samples, "orderstream_view_end_to_end_age_seconds_bucket", view="order-view", le="+Inf") >= ORDERS
    assert _total(samples, "orderstream_view_apply_duration_seconds_count", view="order-view") >= 1
    # per partition: lag and the last event's time, from both child processes
    assert _has(samples, "orderstream_consumer_lag_records", consumer="order", topic="orders.commands")
    assert _has(samples, "orderstream_consumer_lag_records", consumer="order-view", topic="orders.events")
    stamps = [
        v
        for (n, ls), v in samples.items()
        if n == "orderstream_consumer_last_event_timestamp_seconds" and ("consumer", "order-view") in ls
    ]
    assert stamps and all(time.time() - 600 < v <= time.time() + 5 for v in stamps), stamps
    assert _total(samples, "orderstream_consumer_rebalances_total", consumer="order", event="assigned") >= 1
    # the undecodable record was dead-lettered (and counted in, apart from the commands)
    assert (
        _total(samples, "orderstream_dead_letters_total", consumer="order", topic="payments.events", reason="decode")
        == 1
    )
    assert _total(samples, "orderstream_processor_records_in_total", service="order", topic="payments.events") == 1
    # no order id ever becomes a label
    assert not any(ORDER_ID_PREFIX in value for (_, labels) in samples for _, value in labels)

    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0, log.read_text()[-3000:]
    assert not list((topics.data_dir / "metrics").glob("*")), "the supervisor leaves no multiprocess files behind"


def test_a_taken_metrics_port_is_one_clear_error(topics, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = topics
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "orderstream.cli.main",
                "-b",
                s.effective_bootstrap,
                "--topic-prefix",
                s.topic_prefix,
                "--data-dir",
                str(s.data_dir),
                "run",
                "all",
                "--metrics-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot serve metrics on 127.0.0.1:{port}" in lines[0], result.stderr
