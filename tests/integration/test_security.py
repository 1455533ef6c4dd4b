"""SASL/SCRAM against a real local broker started with a SCRAM listener: right credentials work, wrong ones give one
clear authentication error, and no secret ever appears in any output or log line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from orderstream.broker.daemon import free_port
from orderstream.broker.distribution import KafkaDistribution
from orderstream.broker.local import BrokerSpec, LocalBroker
from orderstream.config import load_settings

USER, SECRET = "alice", f"alice-secret-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory, kafka_bootstrap):
    settings = load_settings()
    spec = BrokerSpec(
        home=tmp_path_factory.mktemp("scram"),
        port=free_port(),
        controller_port=free_port(),
        sasl_port=free_port(),
        scram_users=((USER, SECRET),),
        heap="256m",
        log_level="INFO",
    )
    broker = LocalBroker(spec, KafkaDistribution(settings.kafka_version, settings.cache_dir))
    broker.start(timeout_s=120)
    yield broker
    broker.stop()


def cli(broker, password: str, *args: str, prefix: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSTREAM_")} | {
        "ORDERSTREAM_BOOTSTRAP_SERVERS": broker.spec.sasl_bootstrap,
        "ORDERSTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ORDERSTREAM_SASL_MECHANISM": "SCRAM-SHA-256",
        "ORDERSTREAM_SASL_USERNAME": USER,
        "ORDERSTREAM_SASL_PASSWORD": password,
        "ORDERSTREAM_TOPIC_PREFIX": prefix or f"sec{uuid.uuid4().hex[:6]}.",
    }
    return subprocess.run(
        [sys.executable, "-m", "orderstream.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_right_credentials_manage_topics_and_produce(scram_broker):
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config

    prefix = f"sec{uuid.uuid4().hex[:6]}."
    result = cli(scram_broker, SECRET, "topics", "init", "--json", prefix=prefix)
    assert result.returncode == 0, result.stderr
    settings = load_settings(
        bootstrap_servers=scram_broker.spec.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=SECRET,
        topic_prefix=prefix,
    )
    errors = []
    producer = Producer(producer_config(settings))
    producer.produce(
        settings.topic("orders.commands"), key=b"k", value=b"x", on_delivery=lambda err, _: errors.append(err)
    )
    assert producer.flush(20) == 0
    assert errors == [None]


@pytest.mark.parametrize("args", [("topics", "init"), ("broker", "status"), ("-v", "topics", "init")])
def test_wrong_credentials_give_one_clear_line_and_leak_no_secret(scram_broker, args):
    wrong = f"wrong-{uuid.uuid4().hex[:8]}"
    result = cli(scram_broker, wrong, *args)
    assert result.returncode == 1
    assert "authentication failed" in result.stderr
    assert "check sasl_username, sasl_password and sasl_mechanism" in result.stderr
    if "-v" not in args:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for secret in (wrong, SECRET):
        assert secret not in result.stdout and secret not in result.stderr


def test_broker_log_holds_no_secret(scram_broker):
    cli(scram_broker, f"wrong-{uuid.uuid4().hex[:8]}", "topics", "init")
    logs = "".join(p.read_text(errors="replace") for p in scram_broker.spec.home.glob("*.log"))
    assert "Authentication failed" in logs or "authentication" in logs.lower()
    assert SECRET not in logs
