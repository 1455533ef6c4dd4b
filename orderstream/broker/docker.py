"""The Docker path: testcontainers' Kafka container, when a Docker engine is reachable."""

from __future__ import annotations

from orderstream.broker.errors import BrokerError


def docker_available() -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        docker.from_env().ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False
    return True


def start_docker_kafka(image: str = "apache/kafka:4.1.1") -> str:
    """Start a Kafka container (left running) and return its bootstrap address."""
    try:
        from testcontainers.community.kafka import KafkaContainer  # testcontainers >= 4.14
    except ImportError:
        try:
            from testcontainers.kafka import KafkaContainer
        except ImportError:
            raise BrokerError("testcontainers is not installed: pip install 'orderstream[docker]'") from None
    if not docker_available():
        raise BrokerError(
            "no Docker engine is reachable (is dockerd running, DOCKER_HOST set?); "
            "use `orderstream broker start` without --docker for a local broker from Kafka's jars"
        )
    container = KafkaContainer(image).with_kraft()
    container.start()
    return container.get_bootstrap_server()
