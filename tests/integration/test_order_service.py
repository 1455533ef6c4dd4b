"""The order service against the real broker: replies, idempotency, optimistic concurrency, its state cache, and two
instances sharing (then handing over) the partitions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

from orderstream.domain.commands import Reply
from orderstream.domain.events import OrderCancelled, OrderPlaced
from orderstream.producers.commands import CommandSender
from orderstream.runtime.state import Checkpoint, StateCache
from orderstream.services.order_service import OrderService
from orderstream.topology import ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES
from tests.support.orders import (
    RunningService,
    cancel_order,
    events_by_order,
    place_order,
    read_topic,
    running_order_service,
)


def sender(settings) -> CommandSender:
    return CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test")


def test_a_repeated_command_id_yields_one_event_and_the_same_reply(topics):
    with running_order_service(topics), sender(topics) as send:
        placed = send.send_and_wait(place_order("o-dup", command_id="cmd-1"))
        again = send.send_and_wait(place_order("o-dup", command_id="cmd-1"))
        other = send.send_and_wait(place_order("o-dup", command_id="cmd-2"))  # a new command: place twice

    assert placed.reply.accepted and placed.reply.version == 1
    assert again.reply == placed.reply, "the repeat gets the first reply, token included"
    assert str(placed.token) == f"orders.events:{placed.sent.partition}:{placed.reply.events_offset}"
    assert not other.reply.accepted and "already exists" in other.reply.reason and other.reply.version == 1

    events = [e for _, e in read_topic(topics, ORDERS_EVENTS)]
    assert [(type(e), e.version, e.causation_id) for e in events] == [(OrderPlaced, 1, "cmd-1")]
    records = read_topic(topics, ORDERS_REPLIES)
    replies = [r for _, r in records if r.command_id == "cmd-1"]
    assert len(replies) == 2 and replies[0] == replies[1]
    assert {rec.key() for rec, _ in records} == {b"o-dup"}
    assert {rec.partition() for rec, _ in records} == {placed.sent.partition}, "replies on the command's partition"


def _cli(settings, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            settings.effective_bootstrap,
            "--topic-prefix",
            settings.topic_prefix,
            "--data-dir",
            str(settings.data_dir),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_cancelling_at_the_same_version_one_wins(topics):
    with running_order_service(topics), sender(topics) as send:
        assert send.send_and_wait(place_order("o-race")).reply.accepted
        racers = [_cli(topics, "cancel", "o-race", "--expected-version", "1", "--wait", "--json") for _ in range(2)]
        results = [(p.wait(60), *p.communicate()) for p in racers]

    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    outcomes = [json.loads(out) for _, out, _ in results]
    for body in outcomes:
        assert {"order_id", "accepted", "version", "reason", "token"} <= body.keys()
    winner = next(b for b in outcomes if b["accepted"])
    loser = next(b for b in outcomes if not b["accepted"])
    assert winner["version"] == 2 and winner["token"].startswith("orders.events:") and winner["reason"] is None
    assert loser["version"] == 2 and "version conflict" in loser["reason"] and loser["token"] is None
    loser_stderr = next(err for code, _, err in results if code == 1)
    assert loser_stderr.strip().count("\n") == 0 and "version conflict" in loser_stderr

    events = [e for _, e in read_topic(topics, ORDERS_EVENTS)]
    assert [e.version for e in events] == [1, 2]
    assert [type(e) for e in events] == [OrderPlaced, OrderCancelled]


def test_deleting_the_state_cache_changes_nothing_but_start_up_time(topics):
    state_dir = topics.data_dir / "state" / "order"
    with running_order_service(topics) as first, sender(topics) as send:
        original = send.send_and_wait(place_order("o-cache-1", command_id="cache-cmd"))
        send.send_and_wait(place_order("o-cache-2"))
        assert send.send_and_wait(cancel_order("o-cache-2", expected_version=1)).reply.accepted
    assert any(state_dir.glob("slot-0/*.pickle")), "stopping wrote the cache, in the instance slot's own directory"

    def snapshot(service: RunningService):
        states = service.service.processor.states
        return {
            p: (
                s.next_offset,
                {k: (v.value, {c: (h.version, h.offset) for c, h in v.handled.items()}) for k, v in s.keys.items()},
            )
            for p, s in states.items()
        }

    with running_order_service(topics) as warm:
        warm.wait_owned(lambda owned: owned == {0, 1, 2})
        with_cache = snapshot(warm)
    shutil.rmtree(state_dir)
    with running_order_service(topics) as cold, sender(topics) as send:
        cold.wait_owned(lambda owned: owned == {0, 1, 2})
        assert snapshot(cold) == with_cache
        repeat = send.send_and_wait(place_order("o-cache-1", command_id="cache-cmd"))
    assert repeat.reply == original.reply, "the idempotency memory (offsets included) came back from the changelog"
    assert first.service.processor.batches_committed == 3

    # a cache whose offset does not match its keys (here: every key's final state, claimed to be at offset 0) is
    # found out by the first changelog record that does not follow it, and the partition is folded from the start
    cache = StateCache(state_dir / "slot-0", topics.topic(ORDERS_EVENTS))
    for number in range(3):
        state = cache.load(number)
        if state is not None and state.keys:
            cache.save(Checkpoint(number, 0, state.keys, whole=True))
    with running_order_service(topics) as healed:
        healed.wait_owned(lambda owned: owned == {0, 1, 2})
        assert snapshot(healed) == with_cache


def test_two_instances_share_the_partitions_and_hand_over_without_loss(topics):
    orders = [f"o-pair-{i}" for i in range(24)]
    a = RunningService(OrderService(topics)).start()
    b = RunningService(OrderService(topics)).start()
    try:
        deadline = time.monotonic() + 30
        while not (a.owned and b.owned and a.owned | b.owned == {0, 1, 2}):
            assert time.monotonic() < deadline, (a.owned, b.owned)
            time.sleep(0.05)
        assert a.owned.isdisjoint(b.owned)
        assert a.service.processor.spec.transactional_id != b.service.processor.spec.transactional_id
        assert a.service.processor.spec.state_dir != b.service.processor.spec.state_dir  # no cache file has two writers
        with sender(topics) as send:
            for order_id in orders:
                send.send(place_order(order_id))
            read_topic(topics, ORDERS_REPLIES, until=lambda replies: len(replies) >= len(orders))
            a.stop()
            b.wait_owned(lambda owned: owned == {0, 1, 2})
            for order_id in orders:
                send.send(cancel_order(order_id, expected_version=1))
            replies = [r for _, r in read_topic(topics, ORDERS_REPLIES, until=lambda rs: len(rs) >= 2 * len(orders))]
    finally:
        if a.thread.is_alive():
            a.stop()
        b.stop()

    assert len(replies) == 2 * len(orders) and all(isinstance(r, Reply) and r.accepted for r in replies), replies
    streams = events_by_order([e for _, e in read_topic(topics, ORDERS_EVENTS)])
    assert set(streams) == set(orders)
    for order_id, events in streams.items():
        assert [(type(e), e.version) for e in events] == [(OrderPlaced, 1), (OrderCancelled, 2)], order_id
    assert a.service.processor.batches_committed > 0 and b.service.processor.batches_committed > 0


def test_a_fenced_producer_is_replaced_and_the_batch_redone(topics):
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config

    with running_order_service(topics) as service, sender(topics) as send:
        assert send.send_and_wait(place_order("o-fence-1")).reply.accepted
        # a newer producer with the processor's transactional.id bumps the epoch: the processor's next transaction
        # fails with a fatal "fenced" error, and it recovers by recreating its producer (which fences this one back)
        usurper = Producer(producer_config(topics, service.service.processor.spec.transactional_id))
        usurper.init_transactions(10)
        outcome = send.send_and_wait(place_order("o-fence-2"))
        assert outcome.reply.accepted and outcome.reply.version == 1
    events = [e for _, e in read_topic(topics, ORDERS_EVENTS)]
    assert sorted(e.order_id for e in events) == ["o-fence-1", "o-fence-2"]
