"""`replay topic SRC --to DST`: exactly the matching records are copied - checked record by record (partition, key,
value, headers, timestamp) - into a topic the tool creates like SRC, or re-partitioned into one with more
partitions; a re-run copies nothing twice."""

from __future__ import annotations

import json
import uuid
from datetime import UTC

import pytest
from typer.testing import CliRunner

from orderstream.producers.topic_copy import SOURCE_HEADER, CopyFilter, TopicCopy
from tests.support.topic_copy import BASE_MS, create, expected_copy, fill, read_all, without_offsets


@pytest.fixture
def source(settings):
    topic = create(settings, "src.events", 3)
    fill(settings, topic, 150)
    return settings, topic, read_all(settings, topic)


@pytest.mark.parametrize(
    "window",
    [
        dict(),
        dict(from_s=100),
        dict(from_s=100, until_s=300, event_type="OrderPlaced"),
        dict(until_s=250, event_type="orderstream.orders.OrderConfirmed.v1"),
    ],
)
def test_copies_exactly_the_matching_records_into_a_topic_created_like_the_source(source, window):
    settings, topic, records = source
    from datetime import datetime

    at = lambda s: None if s is None else datetime.fromtimestamp((BASE_MS + s * 1000) / 1000, UTC)  # noqa: E731
    copy_filter = CopyFilter.of(at(window.get("from_s")), at(window.get("until_s")), window.get("event_type"))
    name = f"dst.{uuid.uuid4().hex[:6]}"
    result = TopicCopy(settings, "src.events", name, copy_filter).run()
    expected = expected_copy(records, topic, copy_filter)
    assert 0 < len(expected) <= len(records)
    assert result.created and result.same_partitioning and result.copied == len(expected)
    assert without_offsets(read_all(settings, settings.topic(name))) == expected  # record by record, in order

    again = TopicCopy(settings, "src.events", name, copy_filter).run()  # a re-run: nothing twice
    assert again.copied == 0 and again.resumed
    assert without_offsets(read_all(settings, settings.topic(name))) == expected


def test_into_more_partitions_keys_are_repartitioned_and_the_tool_says_so(source):
    settings, _, records = source
    create(settings, "wide.events", 5)
    runner = CliRunner()
    from orderstream.cli.main import app

    base = ["--bootstrap-servers", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix]
    result = runner.invoke(app, [*base, "replay", "topic", "src.events", "--to", "wide.events", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["copied"] == len(records) and not summary["same_partitioning"]
    assert any("re-partitioned by the default partitioner" in n for n in summary["notices"])
    copied = read_all(settings, settings.topic("wide.events"))
    assert sorted((k, v, ts) for _, _, k, v, _, ts in copied) == sorted((k, v, ts) for _, _, k, v, _, ts in records)
    partition_of_key: dict[bytes, set[int]] = {}
    for p, _, key, *_ in copied:
        partition_of_key.setdefault(key, set()).add(p)
    assert all(len(ps) == 1 for ps in partition_of_key.values())  # one key, one partition
    assert {p for p, *_ in copied} == set(range(5))
    by_key_src = {}  # per key, the source order is kept
    for p, o, key, *_ in records:
        by_key_src.setdefault(key, []).append((p, o))
    by_key_dst = {}
    for _, _, key, _, headers, _ in copied:
        source_position = dict(headers)[SOURCE_HEADER].decode().rsplit(":", 2)
        by_key_dst.setdefault(key, []).append((int(source_position[1]), int(source_position[2])))
    assert by_key_dst == by_key_src
