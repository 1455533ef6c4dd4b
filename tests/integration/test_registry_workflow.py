"""The whole workflow in registry mode: the scenarios of test_workflow (placed -> confirmed -> shipped -> delivered,
a rejection with compensation, a cancel) run against a pipeline whose every process writes the Confluent wire format
through the session's Apicurio Registry; then a stock confluent-kafka AvroDeserializer, given only the registry URL,
decodes every record of every event topic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from orderstream.config import load_settings
from orderstream.topology import TOPICS, TopicKind
from tests.integration.test_workflow import (  # the same scenarios, run again here on the registry-mode pipeline
    CREDIT_LIMIT_MINOR,
    Pipeline,
    test_a_line_out_of_stock_rejects_the_order_releases_the_other_lines_and_voids_the_payment,  # noqa: F401
    test_cancel_after_confirmation_compensates_and_cancel_after_shipping_is_refused,  # noqa: F401
    test_happy_path_from_restock_to_delivery_and_every_view_agrees,  # noqa: F401
)
from tests.support.orders import read_topic


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, schema_registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from orderstream.kafka.topics import ensure_topics

    url = schema_registry.spec.url
    previous = os.environ.get("ORDERSTREAM_SCHEMA_REGISTRY_URL")
    os.environ["ORDERSTREAM_SCHEMA_REGISTRY_URL"] = url  # the in-process CLI calls of the scenarios too
    base = tmp_path_factory.mktemp("registry-workflow")
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"rwf{uuid.uuid4().hex[:8]}.",
        data_dir=base / "data",
        partitions=3,
    )
    ensure_topics(settings)
    env = os.environ | {"ORDERSTREAM_PAYMENT_CREDIT_LIMIT_MINOR": str(CREDIT_LIMIT_MINOR), "PYTHONUNBUFFERED": "1"}
    root = ["-b", kafka_bootstrap, "--topic-prefix", settings.topic_prefix, "--data-dir", str(settings.data_dir)]
    log = base / "all.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "orderstream.cli.main", *root, "run", "all"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    running = Pipeline(settings, [process], [log])
    try:
        yield running
        running.check_running()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        if previous is None:
            os.environ.pop("ORDERSTREAM_SCHEMA_REGISTRY_URL", None)
        else:
            os.environ["ORDERSTREAM_SCHEMA_REGISTRY_URL"] = previous
    assert code == 0, log.read_text()[-3000:]


def test_a_stock_avro_deserializer_decodes_every_record_of_every_event_topic(pipeline: Pipeline):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    pipeline.restock("RWF-D1", 3)
    pipeline.deliver_order("c-deser", "RWF-D1:1:3.00")  # ship and deliver are commands on orders.commands now
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": os.environ["ORDERSTREAM_SCHEMA_REGISTRY_URL"]}))
    event_topics = [spec.name for spec in TOPICS if spec.kind is TopicKind.EVENTS]
    for name in event_topics:
        records = read_topic(pipeline.settings, name)
        assert records, f"{name} is empty"
        for record, event in records:
            plain = deserializer(record.value(), SerializationContext(record.topic(), MessageField.VALUE))
            assert record.value()[:1] == b"\x00", name
            assert plain["event_id"] == event.event_id and plain["version"] == event.version, (name, plain)
