"""The librdkafka log throttle: one line per broker per interval, with the count of the lines held back."""

from __future__ import annotations

import logging

from orderstream.kafka.client_log import PerBrokerThrottle, broker_of

REFUSED = "FAIL [rdkafka#consumer-1] [thrd:{b}/1]: {b}/1: Connect to ipv4#{b} failed: Connection refused"


def record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("librdkafka", level, __file__, 1, "%s", (message,), None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_broker_of_names_host_and_port_for_every_connection_to_it():
    assert broker_of(REFUSED.format(b="127.0.0.1:9092")) == "127.0.0.1:9092"
    assert broker_of("FAIL [p] [thrd:sasl_plaintext://k1:9093/bootstrap]: k1:9093/bootstrap: Disconnected") == "k1:9093"
    assert broker_of("ERROR [p] [thrd:app]: rdkafka#producer-1: 1/1 brokers are down") == "all brokers"
    assert broker_of("CONFWARN [p] [thrd:app]: Configuration property x is ignored") is None
    leader = "METADATAUPDATE [p] [thrd:main]: Partition t(x)[1]: new leader-1 not found in cache"
    assert broker_of(leader) == "the cluster's partition leaders"


def test_one_line_per_broker_per_interval_then_the_count_of_those_held_back():
    clock = Clock()
    throttle = PerBrokerThrottle(interval_s=10, clock=clock)
    a, b = REFUSED.format(b="10.0.0.1:9092"), REFUSED.format(b="10.0.0.2:9092")

    passed = []
    for _ in range(50):  # five seconds of 10 attempts a second, to two brokers
        for message in (a, b):
            r = record(message)
            if throttle.filter(r):
                passed.append(r.getMessage())
        clock.now += 0.1
    assert passed == [a, b]

    clock.now += 6  # past the interval: the next line says how many were held back
    r = record(a)
    assert throttle.filter(r)
    assert r.getMessage() == f"{a} (and 49 more about 10.0.0.1:9092 in the last 11 s)"
    assert not throttle.filter(record(a))


def test_lines_about_no_broker_and_debug_lines_are_never_held_back():
    throttle = PerBrokerThrottle(interval_s=10, clock=Clock())
    other = "CONFWARN [p] [thrd:app]: Configuration property x is ignored"
    assert all(throttle.filter(record(other, logging.WARNING)) for _ in range(5))
    debug = REFUSED.format(b="10.0.0.1:9092")
    assert all(throttle.filter(record(debug, logging.DEBUG)) for _ in range(5))
