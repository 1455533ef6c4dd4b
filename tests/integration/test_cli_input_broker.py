"""Input only the broker can judge: one `error:` line on stderr, exit 1, at once, never a traceback.

A status of a prefix with no topics, --after tokens naming a partition or an offset the topic does not have (they were
waited for until the timeout, which then blamed the projections), and `topics init` asked for another replication
factor than the existing topics have (it said "ok").
"""

from __future__ import annotations

import time

from confluent_kafka import Producer
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.kafka.clients import producer_config

runner = CliRunner()


def base(settings) -> list[str]:
    return [
        "-b",
        settings.effective_bootstrap,
        "--topic-prefix",
        settings.topic_prefix,
        "--data-dir",
        str(settings.data_dir),
    ]


def error_line(settings, *args: str, within_s: float = 15) -> str:
    started = time.monotonic()
    result = runner.invoke(app, [*base(settings), *args])
    elapsed = time.monotonic() - started
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert elapsed < within_s, f"{args} took {elapsed:.1f}s"
    return lines[0]


def test_status_of_a_prefix_without_topics_says_to_create_them(settings):
    line = error_line(settings, "status")
    assert f"no orderstream topics with prefix {settings.topic_prefix!r} exist" in line
    assert "`orderstream topics init`" in line


def write_one_record(settings) -> None:
    """One record at orders.events partition 0, offset 0 (no projector reads it: only its offset matters here)."""
    producer = Producer(producer_config(settings))
    producer.produce(settings.topic("orders.events"), key=b"o-1", value=b"not read here", partition=0)
    assert producer.flush(10) == 0


def test_after_a_token_the_topic_cannot_hold_fails_at_once(topics):
    # `topics` has 3 partitions; --timeout 60: failing within seconds shows nothing was waited for
    line = error_line(topics, "query", "order", "X", "--after", "orders.events:3:0", "--timeout", "60")
    assert "token orders.events:3:0 cannot be reached: orders.events has 3 partition(s), numbered 0 to 2" in line

    line = error_line(topics, "query", "stock", "--after", "inventory.events:1:999999", "--timeout", "60")
    assert "inventory.events partition 1 ends before offset 999999 (it holds no events)" in line

    write_one_record(topics)
    line = error_line(topics, "query", "order", "X", "--after", "orders.events:0:5", "--timeout", "60")
    assert "orders.events partition 0 ends before offset 5 (its last event is at offset 0)" in line


def test_after_a_token_that_can_exist_is_waited_for(topics):
    write_one_record(topics)
    line = error_line(topics, "query", "order", "X", "--after", "orders.events:0:0", "--timeout", "1")
    assert "order-view is behind by 1 event(s) on orders.events partition 0 after 1s" in line


def test_after_on_a_prefix_without_topics_says_to_create_them(settings):
    line = error_line(settings, "query", "order", "X", "--after", "orders.events:0:0", "--timeout", "60")
    assert f"topic {settings.topic('orders.events')} does not exist" in line and "`orderstream topics init`" in line


def test_topics_init_reports_another_replication_factor(topics):
    assert runner.invoke(app, [*base(topics), "topics", "init", "--partitions", "3"]).exit_code == 0
    line = error_line(topics, "topics", "init", "--partitions", "3", "--replication-factor", "2", within_s=60)
    assert "exist with the wrong settings" in line and "has replication factor 1, expected 2" in line
