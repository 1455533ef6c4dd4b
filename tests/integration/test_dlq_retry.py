"""`dlq retry` sends a letter back only to the consumer group that wrote it, through a retry request in the letter's
DLQ topic: nothing is appended to the original topic (which other groups read). A retry that fails again leaves the
letter as one letter (waiting, with its failure counted); one that succeeds is applied by that group alone."""

from __future__ import annotations

import json
import random
import threading
import time

from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.kafka.clients import admin_config
from orderstream.producers.commands import CommandSender
from orderstream.runtime.projector import Projector
from orderstream.topology import ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES
from orderstream.views.registry import spec_of
from orderstream.views.store import ProjectionStore
from tests.support import garbage
from tests.support.event_log import EventLog, wait_applied
from tests.support.histories import random_history
from tests.support.orders import place_order, running_order_service


def _cli(settings, *args: str, env: dict | None = None):
    base = ["-b", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix]
    return CliRunner().invoke(app, [*base, "--data-dir", str(settings.data_dir), *args], env=env or {})


def _letters(settings, env: dict | None = None) -> list[dict]:
    result = _cli(settings, "dlq", "list", "--all", "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ends(settings, topic: str) -> dict[int, int]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    admin = AdminClient(admin_config(settings))
    name = settings.topic(topic)
    partitions = admin.list_topics(name, timeout=10).topics[name].partitions
    asked = {TopicPartition(name, p): OffsetSpec.latest() for p in partitions}
    return {tp.partition: f.result().offset for tp, f in admin.list_offsets(asked).items()}


def _version_of(settings, view: str, order_id: str) -> int | None:
    """The version of an order's state row in a view (None: no row)."""
    spec = spec_of(view)
    store = ProjectionStore(settings.database_url_for(view), spec)
    try:
        _, live = store.pointer()
        columns = list(store.tables(live)[spec.state_role].columns.keys())
        rows = store.dump()[spec.state_role]
    finally:
        store.dispose()
    versions = [row[columns.index("version")] for row in rows if row[columns.index("order_id")] == order_id]
    return versions[0] if versions else None


def _wait(predicate, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        got = predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_retry_that_fails_again_stays_one_letter_and_nothing_reaches_the_shared_topic(topics):
    sample = place_order("rt-1")
    garbage.write(topics, ORDERS_COMMANDS, garbage.undecodable(b"rt-1", sample)[:1])
    with (
        running_order_service(topics) as service,
        CommandSender(topics, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as send,
    ):
        service.wait_owned(lambda owned: len(owned) == topics.partitions)
        assert send.send_and_wait(place_order("rt-2")).reply.accepted  # the garbage before it was handled by now
        [letter] = _wait(lambda: _letters(topics), "the dead letter")
        assert letter["group"] == f"{topics.topic_prefix}order-service" and not letter["retried"]
        before = _ends(topics, ORDERS_COMMANDS)

        retried = _cli(topics, "dlq", "retry", letter["id"], "--json")
        assert retried.exit_code == 0, retried.output
        again = _wait(lambda: [x for x in _letters(topics) if x["retry_failures"] == 1], "the retry to fail again")
    assert again == [{**letter, "retry_failures": 1}], "one letter, waiting again, its failure counted"
    assert _ends(topics, ORDERS_COMMANDS) == before, "nothing was appended to orders.commands"
    listed = _cli(topics, "dlq", "list")
    assert listed.exit_code == 0 and "order-service" in listed.stdout and "failed again" in listed.stdout


def test_a_retry_goes_to_its_projection_group_alone(topics, tmp_path):
    url = f"sqlite:///{tmp_path}/{{projection}}.db"
    settings = topics.model_copy(update={"database_url": url})
    env = {"ORDERSTREAM_DATABASE_URL": url}
    rng = random.Random(3)
    history = random_history(rng, "rt-late")
    while len(history) < 2:
        history = random_history(rng, "rt-late")
    log = EventLog(settings)
    log.write(history[1:2])  # version 2 before its OrderPlaced: a gap, dead-lettered by both views below

    stop = threading.Event()
    projectors = [Projector(settings, spec_of(name)) for name in ("order-view", "customer-view")]
    threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in projectors]
    for thread in threads:
        thread.start()
    try:
        wait_applied(url, log, names=("order-view", "customer-view"))
        letters = _letters(settings, env)  # each projector acknowledged its letter before storing its position
        assert sorted(x["group"] for x in letters) == sorted(p.group_id for p in projectors)
        log.write(history[:1])  # the OrderPlaced arrives: version 2 can follow it now
        wait_applied(url, log, names=("order-view", "customer-view"))
        before = _ends(settings, ORDERS_EVENTS)

        assert _version_of(settings, "order-view", "rt-late") == 1
        mine = next(x for x in letters if x["group"] == projectors[0].group_id)
        assert _cli(settings, "dlq", "retry", mine["id"], env=env).exit_code == 0
        _wait(lambda: _version_of(settings, "order-view", "rt-late") == 2, "order-view to apply the retried v2")
        time.sleep(1)  # customer-view reads the same request: it must not apply it
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert _ends(settings, ORDERS_EVENTS) == before, "nothing was appended to orders.events"
    assert _version_of(settings, "customer-view", "rt-late") == 1, "customer-view's letter was not retried"
    after = {x["id"]: x for x in _letters(settings, env)}
    assert len(after) == 2 and after[mine["id"]]["retried"] and after[mine["id"]]["retry_failures"] == 0
