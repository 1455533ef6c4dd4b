"""A dead letter keeps the record unchanged and names where it came from and why, with no payload in the message."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orderstream.kafka.dead_letters import dead_letter, retry_group, safe_error_message


@dataclass
class Record:  # the fields of a consumed record a dead letter is made of
    _topic: str = "p.orders.commands"
    _partition: int = 2
    _offset: int = 41
    _key: bytes = b"o-1"
    _value: bytes = b"\xc3\x01garbage"
    _headers: tuple = (("ce_id", b"abc"),)

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    def headers(self):
        return list(self._headers)

    def timestamp(self):
        return (1, 1_700_000_000_000)


def test_dead_letter_keeps_the_record_and_adds_where_and_why():
    letter = dead_letter(Record(), "p.order-service", "decode", ValueError("bad magic"))
    assert letter.topic == "p.orders.commands.dlq"
    assert (letter.key, letter.value, letter.timestamp_ms) == (b"o-1", b"\xc3\x01garbage", 1_700_000_000_000)
    headers = dict(letter.headers)
    assert headers["ce_id"] == b"abc"
    assert headers["dlq.topic"] == b"p.orders.commands" and headers["dlq.partition"] == b"2"
    assert headers["dlq.offset"] == b"41" and headers["dlq.group"] == b"p.order-service"
    assert headers["dlq.stage"] == b"decode" and headers["dlq.error.class"] == b"ValueError"


def test_error_messages_carry_no_payload_data():
    message = safe_error_message(ValueError("customer 'Alice Smith' has card \"4111-1111\"\nsecond line"))
    assert "Alice" not in message and "4111" not in message and "second line" not in message
    assert len(safe_error_message(ValueError("x" * 5000))) <= 300


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError):
        dead_letter(Record(), "g", "lunch", ValueError())


def test_a_restore_letter_says_so():
    letter = dead_letter(Record(), "p.order-service", "apply", ValueError("gap"), reader="restore")
    assert dict(letter.headers)["dlq.reader"] == b"restore"
    assert "dlq.reader" not in dict(dead_letter(Record(), "g", "apply", ValueError()).headers)


def test_only_a_record_of_a_dlq_topic_can_be_a_retry_request():
    request_headers = (("ce_id", b"abc"), ("dlq.retry.group", b"p.order-service"), ("dlq.retry.of", b"1:7"))
    assert retry_group(Record(_topic="p.orders.commands.dlq", _headers=request_headers)) == "p.order-service"
    assert retry_group(Record(_topic="p.orders.commands.dlq")) is None  # a letter
    assert retry_group(Record(_headers=request_headers)) is None  # such headers on the topic itself mean nothing


def test_a_retry_that_fails_again_makes_a_marker_in_its_own_dlq_not_a_second_letter():
    request = Record(
        _topic="p.orders.commands.dlq",
        _headers=(("dlq.retry.group", b"p.order-service"), ("dlq.retry.of", b"1:7")),
    )
    marker = dead_letter(request, "p.order-service", "decode", ValueError("still bad"))
    assert marker.topic == "p.orders.commands.dlq" and marker.value == b"" and marker.key == b"o-1"
    headers = dict(marker.headers)
    assert headers["dlq.retry.failed"] == b"1:7" and headers["dlq.group"] == b"p.order-service"
    assert headers["dlq.stage"] == b"decode" and "dlq.topic" not in headers
