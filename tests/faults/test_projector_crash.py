"""Kill the projector (a real `orderstream run projections --view ...` process: the views of orders.events) where it
hurts, restart it, and check that its views equal a clean rebuild of the same log: no event lost, none applied twice.
On SQLite and PostgreSQL.

Crash points: ORDERSTREAM_FAULT=after_sql_commit (rows and offsets committed in SQL, Kafka not told),
ORDERSTREAM_FAULT=mid_batch (inside the SQL transaction, before COMMIT), and a plain SIGKILL from outside while it
works through a backlog.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING

from orderstream import failpoints
from orderstream.runtime.projector import Projector
from orderstream.services.projections import ProjectionsService
from orderstream.topology import ORDERS_EVENTS
from orderstream.views.registry import SPECS
from orderstream.views.store import ProjectionStore
from tests.support.databases import another_database, url_of
from tests.support.event_log import EventLog, dump_all, kafka_offsets, stored_offsets, wait_applied
from tests.support.histories import public_rows, random_history, reference, without_zero_counters
from tests.support.orders import RunningService


def seeks(log_path) -> dict[str, dict[int, int]]:
    """What each projection sought to on its first assignment, from the projector's log (-2 = the beginning)."""
    found: dict[str, dict[int, int]] = {}
    for line in log_path.read_text().splitlines():
        match = re.search(r"INFO orderstream.runtime.projector: ([a-z-]+): assigned (.*)$", line)
        if match and match.group(1) in SPECS and match.group(1) not in found:  # the order views this test checks
            assigned = re.findall(r"([\w.-]+):(\d+)@(-?\d+)", match.group(2))
            # its topics' DLQ topics are assigned too (retry requests): only the projected topic is checked here
            found[match.group(1)] = {int(p): int(o) for t, p, o in assigned if not t.endswith(".dlq")}
    return found


class ProjectorProcess:
    """`python -m orderstream.cli.main ... run projections --view V...` for the views of orders.events, in one
    process (its exit code is the crash's), with a stable instance id (static membership)."""

    def __init__(self, settings, db_url, tmp_path, instance: str, fault: str | None = None) -> None:
        env = {key: value for key, value in os.environ.items() if key != failpoints.ENV}
        env |= {
            "ORDERSTREAM_DATABASE_URL": db_url,
            "ORDERSTREAM_PROJECTION_BATCH_SIZE": "40",
            "ORDERSTREAM_INSTANCE_ID": instance,
        }
        if fault:
            env[failpoints.ENV] = fault
        self.log_path = tmp_path / f"projector-{uuid.uuid4().hex[:6]}.log"
        command = [
            sys.executable, "-m", "orderstream.cli.main", "--bootstrap-servers", settings.effective_bootstrap,
            "--topic-prefix", settings.topic_prefix, "--data-dir", str(settings.data_dir), "run", "projections",
            *(arg for name in SPECS for arg in ("--view", name)),
        ]  # fmt: skip
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"projector did not exit; its log:\n{self.log_path.read_text()[-3000:]}") from None

    def check(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"projector exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}"
            )


def lacks_indexes(db_url: str) -> bool:
    store = ProjectionStore(url_of(db_url, "order-view"), SPECS["order-view"])
    try:
        return store.lacks_indexes(1)
    finally:
        store.dispose()


def test_crashes_at_every_commit_boundary_leave_views_equal_to_a_clean_rebuild(topics, db_url, tmp_path):
    settings = topics.model_copy(update={"database_url": db_url})
    rng = random.Random(5)
    histories = [random_history(rng, f"f{n}", prefix="f") for n in range(300)]
    first, second = histories[:150], histories[150:]
    log = EventLog(settings)
    log.write(random_history(rng, "phantom")[:2], abort=True)
    for start in range(0, len(first), 30):
        log.write([e for h in first[start : start + 30] for e in h])
    instance = f"fault-{uuid.uuid4().hex[:6]}"

    # 1. killed between the SQL commit and the Kafka commit
    crashed = ProjectorProcess(settings, db_url, tmp_path, instance, fault="after_sql_commit@3")
    assert crashed.wait() == failpoints.EXIT_CODE, crashed.log_path.read_text()[-2000:]
    in_sql, in_kafka = stored_offsets(db_url), kafka_offsets(settings)
    assert any(in_sql[name] != in_kafka[name] for name in SPECS), "the crash should leave Kafka behind the database"
    assert lacks_indexes(db_url), "a fresh order view loads its backlog before its secondary indexes exist"

    # 2. killed inside the SQL transaction, before COMMIT
    before = stored_offsets(db_url)
    crashed = ProjectorProcess(settings, db_url, tmp_path, instance, fault="mid_batch@2")
    assert crashed.wait() == failpoints.EXIT_CODE, crashed.log_path.read_text()[-2000:]
    sought, topic = seeks(crashed.log_path), settings.topic(ORDERS_EVENTS)
    assert sought, crashed.log_path.read_text()[-2000:]
    for name, partitions in sought.items():  # it resumed from the database's positions, not Kafka's
        assert partitions == {p: before[name].get((topic, p), OFFSET_BEGINNING) for p in partitions}, name

    # 3. SIGKILL from outside while it works through a growing backlog
    working = ProjectorProcess(settings, db_url, tmp_path, instance)
    baseline = sum(sum(o.values()) for o in stored_offsets(db_url).values())
    for start in range(0, len(second), 30):
        log.write([e for h in second[start : start + 30] for e in h])
    deadline = time.monotonic() + 60
    while sum(sum(o.values()) for o in stored_offsets(db_url).values()) == baseline:
        working.check()
        assert time.monotonic() < deadline, "the projector made no progress"
        time.sleep(0.02)
    working.process.send_signal(signal.SIGKILL)
    assert working.wait() == -signal.SIGKILL

    # 4. restart cleanly, catch up, stop with SIGTERM
    final = ProjectorProcess(settings, db_url, tmp_path, instance)
    wait_applied(db_url, log, timeout_s=60, check=final.check)
    deadline = time.monotonic() + 60
    while set(seeks(final.log_path)) != set(SPECS):  # running, with its partitions (the killed one may have applied
        final.check()  # everything already: then the database is caught up before this process has even started)
        assert time.monotonic() < deadline, final.log_path.read_text()[-2000:]
        time.sleep(0.05)
    final.process.send_signal(signal.SIGTERM)
    assert final.wait() == 0, final.log_path.read_text()[-2000:]
    assert kafka_offsets(settings) == stored_offsets(db_url)  # Kafka mirrors the database again
    assert not lacks_indexes(db_url), "the backlog is loaded: the deferred indexes are built"

    # 5. a clean rebuild of the same log in a fresh database, by fresh consumer groups
    rebuild_url = another_database(db_url, tmp_path)
    rebuild_settings = settings.model_copy(update={"database_url": rebuild_url, "projection_batch_size": 500})
    rebuild = RunningService(
        ProjectionsService(
            Projector(rebuild_settings, spec, group_id=f"rebuild-{uuid.uuid4().hex[:6]}.{name}")
            for name, spec in SPECS.items()
        )
    ).start()
    wait_applied(rebuild_url, log, timeout_s=60, check=rebuild.check)
    rebuild.stop()

    # the same rows (an all-zero sales counter row is left or not depending on how the events were cut into batches,
    # and the killed run and the rebuild cut them differently: tests/support/histories.py)
    assert without_zero_counters(dump_all(db_url)) == without_zero_counters(dump_all(rebuild_url))
    assert stored_offsets(db_url) == stored_offsets(rebuild_url)
    assert public_rows(dump_all(db_url)) == reference(histories)
