"""Rebuilding a processor's state from its changelog emits nothing: after a restart with the state cache deleted (a
full replay of orders.events into memory), no topic has a single new record."""

from __future__ import annotations

import time

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from orderstream.kafka.clients import admin_config
from orderstream.producers.commands import CommandSender
from orderstream.topology import ORDERS_COMMANDS, ORDERS_REPLIES, all_topics
from tests.support.orders import cancel_order, place_order, running_order_service


def end_offsets(settings) -> dict[tuple[str, int], int]:
    admin = AdminClient(admin_config(settings))
    metadata = admin.list_topics(timeout=10).topics
    wanted = {
        TopicPartition(settings.topic(spec.name), p): OffsetSpec.latest()
        for spec in all_topics()
        for p in metadata[settings.topic(spec.name)].partitions
    }
    return {(tp.topic, tp.partition): f.result().offset for tp, f in admin.list_offsets(wanted).items()}


def test_state_restore_emits_nothing(topics):
    with running_order_service(topics) as service:
        service.wait_owned(lambda owned: len(owned) == topics.partitions)
        with CommandSender(topics, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as sender:
            for i in range(10):
                assert sender.send_and_wait(place_order(f"rs-{i}")).reply.accepted
            assert sender.send_and_wait(cancel_order("rs-0", expected_version=1)).reply.accepted
    before = end_offsets(topics)
    caches = list((topics.data_dir / "state").rglob("*.pickle"))
    assert caches, "the first run checkpointed its state"
    for cache in caches:  # the next start must replay the whole changelog
        cache.unlink()

    with running_order_service(topics) as service:
        service.wait_owned(lambda owned: len(owned) == topics.partitions)  # owned = restored and consuming
        time.sleep(2)
        assert service.service.processor.batches_committed == 0, "nothing to process, so no transaction"
    assert end_offsets(topics) == before
