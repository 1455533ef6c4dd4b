"""Only a topic's owner writes it: a SASL/SCRAM broker with Kafka's authorizer on, `security init` run as an
administrator, then each service as its own principal (service_credentials). A principal without the owner's ACL
cannot write orders.events; the CLI's principal writes commands only; the pipeline confirms an order end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import pytest

from orderstream.broker.daemon import free_port
from orderstream.broker.distribution import KafkaDistribution
from orderstream.broker.local import BrokerSpec, LocalBroker
from orderstream.config import load_settings

ADMIN, ADMIN_SECRET = "admin", f"admin-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory, kafka_bootstrap):
    settings = load_settings()
    spec = BrokerSpec(
        home=tmp_path_factory.mktemp("acl"),
        port=free_port(),
        controller_port=free_port(),
        sasl_port=free_port(),
        scram_users=((ADMIN, ADMIN_SECRET),),
        acls=True,
        super_users=(ADMIN,),
        heap="384m",
        log_level="WARN",
    )
    broker = LocalBroker(spec, KafkaDistribution(settings.kafka_version, settings.cache_dir))
    broker.start(timeout_s=120)
    yield broker
    broker.stop()


def env_of(broker, user: str, password: str, prefix: str, data_dir, **extra: str) -> dict[str, str]:
    return (
        {k: v for k, v in os.environ.items() if not k.startswith("ORDERSTREAM_")}
        | {
            "ORDERSTREAM_BOOTSTRAP_SERVERS": broker.spec.sasl_bootstrap,
            "ORDERSTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "ORDERSTREAM_SASL_MECHANISM": "SCRAM-SHA-512",
            "ORDERSTREAM_SASL_USERNAME": user,
            "ORDERSTREAM_SASL_PASSWORD": password,
            "ORDERSTREAM_TOPIC_PREFIX": prefix,
            "ORDERSTREAM_DATA_DIR": str(data_dir),
            "ORDERSTREAM_PARTITIONS": "3",
            "PYTHONUNBUFFERED": "1",
        }
        | extra
    )


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderstream.cli.main", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def produce(broker, user: str, password: str, topic: str) -> str | None:
    """Write one record as `user`; the delivery error's text, or None when the broker took it."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": broker.spec.sasl_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user,
            "sasl.password": password,
            "message.timeout.ms": 15000,
        }
    )
    reports: list[str | None] = []
    producer.produce(
        topic, key=b"k", value=b"not an event", on_delivery=lambda err, _: reports.append(err and err.str())
    )
    deadline = time.monotonic() + 20
    while not reports and time.monotonic() < deadline:
        producer.poll(0.2)
    return reports[0] if reports else "no delivery report"


def test_each_service_runs_as_its_own_principal_and_only_the_owner_writes_its_topic(acl_broker, tmp_path):
    prefix = f"acl{uuid.uuid4().hex[:6]}."
    admin = env_of(acl_broker, ADMIN, ADMIN_SECRET, prefix, tmp_path / "data")
    assert cli(admin, "topics", "init").returncode == 0
    init = cli(admin, "security", "init", "--json")
    assert init.returncode == 0, init.stderr
    summary = json.loads(init.stdout)
    credentials = tomllib.loads(Path(summary["credentials"]).read_text())
    assert oct(os.stat(summary["credentials"]).st_mode & 0o777) == "0o600"
    assert set(credentials) == {"order", "payment", "inventory", "shipping", "projections", "cli"}
    assert cli(admin, "security", "init").returncode == 0  # idempotent: the same passwords, the same ACLs
    assert tomllib.loads(Path(summary["credentials"]).read_text()) == credentials

    def who(name):
        return credentials[name]["username"], credentials[name]["password"]

    events = f"{prefix}orders.events"
    assert produce(acl_broker, *who("cli"), events).startswith("Broker: Topic authorization failed")
    assert produce(acl_broker, *who("payment"), events).startswith("Broker: Topic authorization failed")
    assert produce(acl_broker, *who("cli"), f"{prefix}payments.events").startswith("Broker: Topic authorization failed")

    as_cli = env_of(acl_broker, *who("cli"), prefix, tmp_path / "data")
    sent = cli(as_cli, "place", "--customer", "c-copy", "--item", "NONE-1:1:1.00")  # the CLI writes commands
    assert sent.returncode == 0, sent.stderr
    forced = cli(as_cli, "replay", "topic", "orders.commands", "--to", "orders.events", "--force")
    assert forced.returncode != 0 and forced.stdout == "", forced
    assert forced.stderr.startswith("error: not authorized") and forced.stderr.count("\n") == 1, forced.stderr
    assert "owner's credentials" in forced.stderr

    services = env_of(acl_broker, ADMIN, ADMIN_SECRET, prefix, tmp_path / "data")
    services["ORDERSTREAM_SERVICE_CREDENTIALS"] = summary["credentials"]
    log = (tmp_path / "run-all.log").open("w")
    pipeline = subprocess.Popen(
        [sys.executable, "-m", "orderstream.cli.main", "run", "all", "--no-api"],
        env=services,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        stocked = cli(as_cli, "stock", "add", "ACL-1", "5", "--wait", "--json", timeout=180)
        assert stocked.returncode == 0, (stocked.stderr, (tmp_path / "run-all.log").read_text()[-3000:])
        placed = cli(
            as_cli, "place", "--customer", "c-acl", "--item", "ACL-1:1:2.00", "--wait-for", "outcome", "--json",
            timeout=180,
        )  # fmt: skip
        assert placed.returncode == 0, (placed.stderr, (tmp_path / "run-all.log").read_text()[-3000:])
        assert json.loads(placed.stdout)["outcome"] == "CONFIRMED"
        deadline = time.monotonic() + 60
        while True:  # the projections, as their own principal, show it
            shown = cli(as_cli, "query", "order", json.loads(placed.stdout)["order_id"], "--json")
            if shown.returncode == 0 and json.loads(shown.stdout)["status"] == "CONFIRMED":
                break
            assert time.monotonic() < deadline, shown.stderr
            time.sleep(1)
        assert "AUTHORIZATION_FAILED" not in (tmp_path / "run-all.log").read_text()
    finally:
        pipeline.send_signal(signal.SIGTERM)
        pipeline.wait(60)
