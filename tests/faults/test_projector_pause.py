"""A projector paused with SIGSTOP past its session timeout and max.poll.interval.ms, while a second instance takes
its partitions over, then resumed: the zombie's writes must not land. The views equal the reference fold of the log
and the history checker finds no row ahead of the log."""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.support.event_log import EventLog, dump_all, wait_applied
from tests.support.histories import public_rows, random_history, reference
from tests.support.history import History
from tests.support.pipeline import ServiceProcess

pytestmark = pytest.mark.slow

PAUSE_ENV = {
    "ORDERSTREAM_SESSION_TIMEOUT_MS": "6000",
    "ORDERSTREAM_MAX_POLL_INTERVAL_MS": "8000",
    "ORDERSTREAM_PROJECTION_BATCH_SIZE": "50",
}


def test_a_paused_projector_cannot_write_behind_its_successor(topics, tmp_path):
    template = f"sqlite:///{tmp_path}/views/{{projection}}.db"
    settings = topics.model_copy(update={"database_url": template})
    rng = random.Random(3)
    histories = [random_history(rng, f"p-{i:04d}") for i in range(900)]
    log = EventLog(settings)
    first, second, third = histories[:100], histories[100:700], histories[700:]
    log.write([e for h in first for e in h])

    zombie = ServiceProcess(settings, "projections", tmp_path / "zombie.log", PAUSE_ENV).start()
    successor = ServiceProcess(settings, "projections", tmp_path / "successor.log", PAUSE_ENV)
    try:
        wait_applied(template, log, timeout_s=60, check=lambda: _alive(zombie))
        for history in second:  # many small transactions: the zombie is busy when it is stopped
            log.write(history)
        zombie.signal(signal.SIGSTOP)
        successor.start()
        time.sleep(10)  # past session.timeout.ms and max.poll.interval.ms: the group has moved on without it
        log.write([e for h in third for e in h])
        zombie.signal(signal.SIGCONT)  # it wakes up mid-batch, believing it still owns its partitions
        wait_applied(template, log, timeout_s=90, check=lambda: _alive(successor))
        time.sleep(2)  # let the zombie finish whatever it had in hand
    finally:
        codes = (zombie.stop(), successor.stop())
    rows = public_rows(dump_all(template))
    assert rows == reference(histories), f"zombie log:\n{zombie.tail()}\nsuccessor log:\n{successor.tail()}"

    history = History()
    for h in histories:
        for event in h:
            history.event_observed("orders.events", 0, 0, event, reader=event.event_id)
    for row in rows["order-view"]["orders"]:
        history.row_observed("order-view", row[0], row[5])
    anomalies = history.check(rows_must_be_current=True)
    assert anomalies.clean, anomalies.summary()
    assert codes == (0, 0), (zombie.tail(), successor.tail())


def _alive(service: ServiceProcess) -> None:
    assert service.alive(), f"{service.name} exited:\n{service.tail()}"
