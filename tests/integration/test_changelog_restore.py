"""A processor's restore meets garbage in its changelog (orders.events for the order service): it skips what cannot be
decoded or does not follow its key's state, ignores repeated versions, and the order service's group dead-letters
each skipped record exactly once however often the state is rebuilt. ChangelogRestore is used through its public
restore() only; the order service through its public run(), owned and states."""

from __future__ import annotations

import shutil

from orderstream.producers.commands import CommandSender
from orderstream.runtime.checkpoints import CheckpointCache
from orderstream.runtime.restore import ChangelogRestore
from orderstream.schemas.codec import Codec
from orderstream.services.order_service import OrderLogic, group_of
from orderstream.topology import ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES
from tests.support import garbage
from tests.support.orders import cancel_order, place_order, read_topic, running_order_service


def _fold(states) -> dict:
    return {
        key: (value.value, value.version, sorted(value.handled))
        for state in states.values()
        for key, value in state.keys.items()
    }


def _garbage(settings) -> list[garbage.Garbage]:
    records = read_topic(settings, ORDERS_EVENTS)
    first_record, first_event = records[0]
    cancelled = next(event for _, event in records if event.order_id == "gr-0" and event.version == 2)
    return [
        *garbage.undecodable(b"gr-1", first_event),
        garbage.Garbage("no-key", None, garbage.CODEC.encode(first_event)),
        garbage.repeated(first_record),
        garbage.skipped(cancelled),  # gr-0 is at version 2: version 4 skips 3
    ]


def _letters(settings) -> list[tuple[str, str, str]]:
    letters = read_topic(settings, "orders.events.dlq", decode=False)
    out = []
    for record, _ in letters:
        headers = {k: v.decode() for k, v in record.headers()}
        out.append((headers["dlq.group"], headers["dlq.stage"], headers["dlq.offset"]))
    return sorted(out)


def test_the_restore_skips_garbage_and_the_group_dead_letters_it_once(topics):
    with (
        running_order_service(topics) as service,
        CommandSender(topics, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send,
    ):
        for i in range(4):
            assert send.send_and_wait(place_order(f"gr-{i}")).reply.accepted
        assert send.send_and_wait(cancel_order("gr-0", expected_version=1)).reply.accepted
        service.wait_owned(lambda owned: len(owned) == topics.partitions)
    clean = _fold(service.service.processor.states)  # after the stop: a reply can arrive before its state is applied
    written = garbage.write(topics, ORDERS_EVENTS, _garbage(topics))
    poisoned = {(kind, offset) for kind, _, offset in written if kind != "repeated"}

    changelog = topics.topic(ORDERS_EVENTS)
    restore = ChangelogRestore(
        topics, "order", group_of(topics), changelog, OrderLogic(), CheckpointCache("order", None, changelog)
    )
    states: dict = {}
    done = restore.restore(states, set(range(topics.partitions)), Codec())
    assert _fold(states) == clean, "garbage changes nothing in the state"
    assert done.repeated == 1 and done.already_dead_lettered == 0
    assert sorted(p.stage for p in done.poisoned) == ["apply", "decode", "decode", "decode", "validate"]
    assert {p.record.offset() for p in done.poisoned} == {offset for _, offset in poisoned}
    assert all(done.screened[p.record.partition()] > p.record.offset() for p in done.poisoned)

    state_dir = topics.data_dir / "state" / "order"
    for round_ in range(2):  # a restart after the cache is gone rebuilds from the log: no second letter
        shutil.rmtree(state_dir, ignore_errors=True)
        with (
            running_order_service(topics) as service,
            CommandSender(topics, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send,
        ):
            service.wait_owned(lambda owned: len(owned) == topics.partitions)
            assert _fold(service.service.processor.states) == clean
            assert send.send_and_wait(cancel_order(f"gr-{2 + round_}", expected_version=1)).reply.accepted
        clean = _fold(service.service.processor.states)
    letters = _letters(topics)
    assert len(letters) == len(poisoned), letters
    assert {group for group, _, _ in letters} == {group_of(topics)}
    assert sorted(int(offset) for _, _, offset in letters) == sorted(offset for _, offset in poisoned)

    again = restore.restore({}, set(range(topics.partitions)), Codec())
    assert not again.poisoned and again.already_dead_lettered == len(poisoned), "the group's mark says: done"
