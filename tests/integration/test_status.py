"""`orderstream status` against a real broker: a stopped service with work waiting, then the same service idle."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from confluent_kafka import Producer

from orderstream.kafka.clients import producer_config
from orderstream.ops.status import collect_status
from orderstream.services.composition import watched_consumers
from orderstream.views import order_view
from orderstream.views.store import ProjectionStore
from orderstream.views.tables import projection_meta
from tests.support.orders import CODEC, place_order, running_order_service


def run_status(settings) -> subprocess.CompletedProcess:
    return subprocess.run(
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
            "status",
            "--json",
            "--sample",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def status_json(settings) -> dict:
    result = run_status(settings)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_tells_stopped_from_idle(topics):
    producer = Producer(producer_config(topics))
    for i in range(12):
        command = place_order(f"st-{i}")
        producer.produce(topics.topic("orders.commands"), key=command.order_id.encode(), value=CODEC.encode(command))
    assert producer.flush(10) == 0

    before = status_json(topics)
    order_rows = [c for c in before["consumers"] if c["name"] == "order"]
    assert {c["state"] for c in order_rows} == {"stopped"}
    assert sum(c["lag"] for c in order_rows) == 12
    assert not any(c["running"] for c in order_rows)
    assert {c["name"] for c in before["consumers"]} >= {"order", "order-view", "customer-view", "sales-view"}
    assert all(t["health"] == "ok" for t in before["topics"])

    with running_order_service(topics):
        deadline = time.monotonic() + 30
        while True:
            rows = [
                r
                for r in collect_status(topics, watched_consumers(topics), sample_s=0.3).consumers
                if r.name == "order"
            ]
            if all(r.state == "idle" for r in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert all(r.running and r.lag == 0 and r.state == "idle" and r.members == 1 for r in rows), rows
        applied = [r for r in rows if r.position]
        assert applied and all(r.last_event_age_s is not None and r.last_event_age_s < 60 for r in applied)


def test_status_says_it_could_not_read_a_view_rather_than_call_it_stopped(topics):
    """A view whose database cannot be read (here: built by another schema version) is not "nothing applied": status
    says which view it could not read and why, in one line, and exits non-zero."""
    store = ProjectionStore(topics.database_url_for(order_view.NAME), order_view.SPEC, writer=True)
    try:
        store.ensure()
        with store.engine.begin() as conn:  # as if another release had built it
            conn.execute(
                projection_meta.update()
                .where(projection_meta.c.projection == order_view.NAME)
                .values(schema_version=order_view.SCHEMA_VERSION + 1)
            )
    finally:
        store.dispose()

    result = run_status(topics)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "could not read how far order-view is from its database" in line
    assert f"built with schema version {order_view.SCHEMA_VERSION + 1}" in line
