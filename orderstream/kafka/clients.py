"""librdkafka configuration for every client, derived from the settings: the base every client starts from.

Runtimes add their own keys on top: the processor its assignor, group timeouts, transaction timeout and linger
(runtime/processor.py), the projector its client.id and group.instance.id (runtime/projector.py), the load
generator its batching (producers/generator.py), and others their own.

Clients themselves are created lazily by whoever needs one (never at import time) and closed by their owner.
"""

from __future__ import annotations

from typing import Any

from orderstream.config import Settings
from orderstream.kafka.client_log import client_logger


class KafkaAuthenticationError(RuntimeError):
    """The cluster refused our credentials. Retrying cannot help: the settings must change."""


def raise_on_authentication_failure(error) -> None:
    """error_cb for every client: an authentication failure becomes an exception in the caller's poll/consume.

    Other errors (a broker down, a connection reset) are transient: librdkafka retries them by itself.
    """
    from confluent_kafka import KafkaError

    if error.code() == KafkaError._AUTHENTICATION:
        raise KafkaAuthenticationError(
            f"authentication failed ({error.str().split(': ', 1)[-1].split(' (after')[0]}): "
            "check sasl_username, sasl_password and sasl_mechanism"
        )


def is_fatal(error) -> bool:
    """A consumer's error event (a message whose error() is set) that leaves the client unable to fetch or commit.
    librdkafka emits a fatal error (e.g. FENCED_INSTANCE_ID, a static member fenced after its session timed out) as an
    event of code _FATAL whose fatal() flag may be unset: test_cluster_broker_loss saw a projector take it for a
    transient error and poll the dead consumer for good."""
    from confluent_kafka import KafkaError

    return error.fatal() or error.code() == KafkaError._FATAL


def common_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.effective_bootstrap,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol,
        # librdkafka's own log lines go to Python logging (logger "librdkafka"), not straight to stderr, and while a
        # broker is away, one line per broker per 10 s with a count instead of one per reconnect attempt.
        "logger": client_logger(),
        "error_cb": raise_on_authentication_failure,
    }
    if settings.sasl_mechanism:
        config["sasl.mechanism"] = settings.sasl_mechanism
    if settings.sasl_username:
        config["sasl.username"] = settings.sasl_username
    if settings.sasl_password is not None:
        config["sasl.password"] = settings.sasl_password.get_secret_value()
    if settings.ssl_ca_location:
        config["ssl.ca.location"] = settings.ssl_ca_location
    return config


def producer_config(settings: Settings, transactional_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """Idempotent, acks=all, the Java client's partitioner (murmur2_random) so Python and Java agree, lz4."""
    config = common_config(settings) | {
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "compression.type": "lz4",
        "linger.ms": 5,
    }
    if transactional_id:
        config["transactional.id"] = transactional_id
    return config | extra


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    """read_committed, no auto commit, no automatic offset store: the runtimes say when a position is done."""
    config = common_config(settings) | {
        "group.id": group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 5),
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "fetch.wait.max.ms": settings.fetch_wait_max_ms,
    }
    return config | extra


def live_fetch_wait_ms(settings: Settings) -> int:
    """fetch.wait.max.ms for a reader someone waits on (projectors, reply readers): see live_fetch_wait_max_ms."""
    return min(settings.fetch_wait_max_ms, settings.live_fetch_wait_max_ms)


def admin_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return common_config(settings) | extra
