"""murmur2 against the Java client's published test vectors (Kafka's UtilsTest.testMurmur2)."""

from __future__ import annotations

import pytest

from orderstream.kafka.partitioner import murmur2, partition_of


@pytest.mark.parametrize(
    ("data", "signed"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_the_java_client(data: bytes, signed: int):
    assert murmur2(data) == signed & 0xFFFFFFFF


def test_partition_is_in_range():
    assert {partition_of(f"o-{i}".encode(), 6) for i in range(200)} == set(range(6))
