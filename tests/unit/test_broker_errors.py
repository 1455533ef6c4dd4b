"""The local broker's error paths: no java, no mvn, a port in use. Each is one line saying what to do."""

from __future__ import annotations

import socket

import pytest

from orderstream.broker.daemon import free_port, port_in_use
from orderstream.broker.distribution import KafkaDistribution
from orderstream.broker.errors import BrokerError
from orderstream.broker.java import find_java
from orderstream.broker.local import BrokerSpec, LocalBroker, min_heap


def test_no_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="java not found: install a JDK 17"):
        find_java()


def test_java_home_without_java_is_reported(tmp_path):
    with pytest.raises(BrokerError, match="java not found"):
        find_java(tmp_path)


def test_no_maven_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match=r"mvn not found: install Maven"):
        KafkaDistribution("4.1.1", tmp_path).ensure(echo=lambda _: None)


def test_port_in_use_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        broker = LocalBroker(
            BrokerSpec(home=tmp_path, port=port, controller_port=free_port()),
            KafkaDistribution("4.1.1", tmp_path / "cache"),
        )
        with pytest.raises(BrokerError, match=f"port {port} .* already in use"):
            broker.start()
    assert broker.pid() is None
    assert not (tmp_path / "cache").exists(), "nothing is downloaded when the port is taken"


def test_stop_with_nothing_running(tmp_path):
    broker = LocalBroker(
        BrokerSpec(home=tmp_path, port=free_port(), controller_port=free_port()), KafkaDistribution("4.1.1", tmp_path)
    )
    assert broker.stop() is False


def test_stale_pid_file_means_not_running(tmp_path):
    (tmp_path / "broker.pid").write_text("999999\n")
    broker = LocalBroker(BrokerSpec(home=tmp_path, port=1, controller_port=2), KafkaDistribution("4.1.1", tmp_path))
    assert broker.pid() is None


def test_server_properties_are_kraft_single_node(tmp_path):
    props = BrokerSpec(home=tmp_path, port=1234, controller_port=1235).server_properties()
    assert "process.roles=broker,controller" in props
    assert "controller.quorum.voters=1@127.0.0.1:1235" in props
    assert "listeners=PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235" in props


@pytest.mark.parametrize(("heap", "expected"), [("512m", "128m"), ("2g", "512m"), ("128m", "64m")])
def test_min_heap(heap, expected):
    assert min_heap(heap) == expected


def test_docker_path_says_clearly_when_no_engine_is_reachable(monkeypatch):
    from orderstream.broker.docker import start_docker_kafka

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(BrokerError, match="no Docker engine is reachable"):
        start_docker_kafka()


@pytest.mark.parametrize(
    "code, transient",
    [
        ("_TIMED_OUT", True),
        ("_DESTROY_BROKER", True),
        ("NOT_LEADER_FOR_PARTITION", True),
        ("_TRANSPORT", True),
        ("TOPIC_AUTHORIZATION_FAILED", False),
        ("_INVALID_ARG", False),
    ],
)
def test_only_errors_that_mean_not_yet_are_retried_until_the_deadline(code, transient):
    from confluent_kafka import KafkaError

    from orderstream.kafka.offsets import is_transient

    assert is_transient(KafkaError(getattr(KafkaError, code))) is transient
