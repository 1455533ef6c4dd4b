"""Which consumer error events leave the client unable to go on (kafka/clients.is_fatal)."""

from __future__ import annotations

from confluent_kafka import KafkaError

from orderstream.kafka.clients import is_fatal


def test_librdkafkas_fatal_event_is_fatal_even_when_its_flag_is_unset():
    fenced = KafkaError(KafkaError._FATAL, "Static consumer fenced by other consumer with same group.instance.id")

    assert not fenced.fatal()  # how the event arrives (test_cluster_broker_loss saw it so)
    assert is_fatal(fenced)


def test_a_flagged_error_is_fatal_and_a_transient_one_is_not():
    assert is_fatal(KafkaError(KafkaError._TIMED_OUT, "blocked", fatal=True))
    assert not is_fatal(KafkaError(KafkaError._TRANSPORT, "Connection refused"))
    assert not is_fatal(KafkaError(KafkaError._MAX_POLL_EXCEEDED, "left the group"))
