"""`replay topic` refuses, before it touches Kafka, a destination the pipeline's services consume and a --type that
names nothing in the wire contract."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.config import load_settings
from orderstream.producers.topic_copy import CopyError, CopyFilter, TopicCopy


@pytest.mark.parametrize("destination", ["orders.commands", "orders.events", "payments.events.dlq"])
def test_a_pipeline_topic_is_refused_as_the_destination_unless_forced(destination, tmp_path):
    settings = load_settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    with pytest.raises(CopyError, match=f"{destination} is one of the pipeline's own topics"):
        TopicCopy(settings, "orders.events.backup", destination)
    TopicCopy(settings, "orders.events.backup", destination, allow_pipeline_destination=True)  # a restore, on purpose


def test_an_unknown_event_type_is_refused_and_known_ones_are_accepted(tmp_path):
    settings = load_settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    with pytest.raises(CopyError, match="--type Bogus: no such type"):
        TopicCopy(settings, "orders.events", "orders.copy", CopyFilter(event_type="Bogus"))
    TopicCopy(settings, "orders.events", "orders.copy", CopyFilter(event_type="OrderPlaced"))


def test_the_cli_says_it_in_one_line_and_produces_nothing(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "-b",
            "127.0.0.1:1",
            "--data-dir",
            str(tmp_path),
            "replay",
            "topic",
            "orders.events",
            "--to",
            "orders.commands",
        ],
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--force" in lines[0], result.stderr
