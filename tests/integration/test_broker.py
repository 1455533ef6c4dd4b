"""The foundation against real services: the local broker's lifecycle, topics, produce/consume, PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from orderstream.broker.daemon import free_port
from orderstream.kafka.clients import consumer_config, producer_config
from orderstream.kafka.topics import TopicsError, ensure_topics
from orderstream.topology import all_topics


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderstream.cli.main", *args], capture_output=True, text=True, env=env, timeout=180
    )


def test_local_broker_lifecycle_through_the_cli(tmp_path, kafka_bootstrap):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSTREAM_")}
    env |= {
        "ORDERSTREAM_DATA_DIR": str(tmp_path),
        "ORDERSTREAM_BROKER_PORT": str(free_port()),
        "ORDERSTREAM_CONTROLLER_PORT": str(free_port()),
        "ORDERSTREAM_BROKER_HEAP": "256m",
    }
    started = run_cli("broker", "start", env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert "broker started" in started.stdout

        again = run_cli("broker", "start", env=env)
        assert again.returncode == 0 and "already running" in again.stdout

        status = run_cli("broker", "status", env=env)
        assert status.returncode == 0, status.stderr
        assert "Apache Kafka version: 4." in status.stdout

        init = run_cli("topics", "init", "--json", env=env)
        assert init.returncode == 0, init.stderr
        assert '"orders.events"' in init.stdout
    finally:
        stopped = run_cli("broker", "stop", env=env)
    assert stopped.returncode == 0 and "broker stopped" in stopped.stdout
    none = run_cli("broker", "stop", env=env)
    assert none.returncode == 0 and "no broker" in none.stdout
    down = run_cli("broker", "status", env=env)
    assert down.returncode == 1 and "no broker answers" in down.stderr


def test_topics_init_is_idempotent_and_reports_mismatches(settings):
    first = ensure_topics(settings)
    assert {s.state for s in first} == {"created"}
    assert len(first) == len(all_topics())
    second = ensure_topics(settings)
    assert {s.state for s in second} == {"ok"}

    with pytest.raises(TopicsError, match="has 3 partitions, expected 5"):
        ensure_topics(settings.model_copy(update={"partitions": 5}))


def test_event_topics_keep_events_forever(topics):
    from confluent_kafka.admin import AdminClient, ConfigResource

    from orderstream.kafka.clients import admin_config

    admin = AdminClient(admin_config(topics))
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.topic("orders.events"))
    config = admin.describe_configs([resource])[resource].result()
    assert config["retention.ms"].value == "-1"


def test_transactional_produce_and_read_committed_consume(topics):
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = topics.topic("orders.events")
    producer = Producer(producer_config(topics, transactional_id=f"test-{uuid.uuid4()}"))
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, key=b"o-1", value=b"aborted")
    producer.abort_transaction(10)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, key=b"o-1", value=f"committed-{i}".encode())
    producer.commit_transaction(10)

    consumer = Consumer(consumer_config(topics, f"g-{uuid.uuid4()}"))
    partition = producer.list_topics(topic).topics[topic].partitions.keys()
    consumer.assign([TopicPartition(topic, p, 0) for p in partition])
    seen = []
    for _ in range(40):
        for message in consumer.consume(10, timeout=0.5):
            assert message.error() is None
            seen.append(message.value())
        if len(seen) >= 3:
            break
    consumer.close()
    assert seen == [b"committed-0", b"committed-1", b"committed-2"]


def test_postgres_cluster_answers(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("select version()")).scalar_one()
    engine.dispose()
    assert version.startswith("PostgreSQL")
