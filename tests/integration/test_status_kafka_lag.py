"""`status`'s lag against Kafka's own ConsumerGroupCommand (kafka-consumer-groups --describe): a transactional writer's
commit marker takes an offset, so Kafka's tool shows lag 1 where nothing is left to do. status reports Kafka's number
too (kafka_lag), equal to the tool's, and says why it differs from its own lag."""

from __future__ import annotations

import subprocess
import sys
import time

from confluent_kafka import Producer

from orderstream.kafka.clients import producer_config
from orderstream.ops.status import collect_status
from orderstream.services.composition import watched_consumers
from orderstream.services.order_service import group_of
from tests.conftest import _unavailable
from tests.support.orders import CODEC, place_order, running_order_service


def kafka_tool_lag(settings, group: str) -> dict[tuple[str, int], int]:
    """(topic, partition) -> LAG as kafka-consumer-groups --describe prints it, run from the Maven-fetched jars."""
    from orderstream.broker.distribution import KafkaDistribution
    from orderstream.broker.errors import BrokerError
    from orderstream.broker.java import find_java

    distribution = KafkaDistribution(settings.kafka_version, settings.cache_dir)
    try:
        java = find_java(settings.java_home)
        distribution.ensure()
    except BrokerError as exc:
        _unavailable("Kafka's tools", "ORDERSTREAM_REQUIRE_BROKER", str(exc))
    result = subprocess.run(
        [java, "-cp", distribution.classpath, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
         "--bootstrap-server", settings.effective_bootstrap, "--describe", "--group", group],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    header = next(line for line in lines if line[:2] == ["GROUP", "TOPIC"])
    at = {name: i for i, name in enumerate(header)}
    return {
        (row[at["TOPIC"]], int(row[at["PARTITION"]])): int(row[at["LAG"]])
        for row in lines
        if row[0] == group and row[at["LAG"]] != "-"
    }


def test_status_reports_kafka_tools_lag_and_why_it_differs(topics):
    producer = Producer(producer_config(topics, transactional_id=f"{topics.topic_prefix}writer"))
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(12):
        command = place_order(f"kl-{i}")
        producer.produce(topics.topic("orders.commands"), key=command.order_id.encode(), value=CODEC.encode(command))
    producer.commit_transaction(30)  # one commit marker after the commands on each partition

    def command_rows():
        report = collect_status(topics, watched_consumers(topics), sample_s=0)
        return [r for r in report.consumers if r.name == "order" and r.topic == topics.topic("orders.commands")]

    with running_order_service(topics):
        deadline = time.monotonic() + 60
        while sum(r.position or 0 for r in command_rows()) < 12 and time.monotonic() < deadline:
            time.sleep(0.5)  # the 12 commands done: the markers after them are never "consumed"
    rows = command_rows()
    tool = kafka_tool_lag(topics, group_of(topics))

    assert {(r.topic, r.partition): r.kafka_lag for r in rows if r.position} == {
        tp: lag for tp, lag in tool.items() if tp[0] == topics.topic("orders.commands")
    }
    assert sum(r.position or 0 for r in rows) == 12, rows
    for row in rows:
        assert row.lag == 0
        if row.position:  # the partition got commands, then the marker: Kafka says 1, and status says why
            assert row.kafka_lag == 1, row
            assert row.lag_note == "+1 transaction marker(s) or aborted record(s)", row

    table = subprocess.run(
        [sys.executable, "-m", "orderstream.cli.main", "-b", topics.effective_bootstrap,
         "--topic-prefix", topics.topic_prefix, "--data-dir", str(topics.data_dir), "status", "--sample", "0.1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "kafka lag" in table.stdout and "+1 transaction marker(s) or aborted record(s)" in table.stdout
