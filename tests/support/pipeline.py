"""A small harness for fault tests: services as real processes, a load driver that records every acknowledged
command, and observers that feed the history checker from the log and from the order view."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from orderstream.config import Settings
from orderstream.domain.events import OrderPlaced
from tests.support.history import History
from tests.support.orders import CODEC, place_order, read_topic
from tests.support.waiting import wait_for


class ServiceProcess:
    """`orderstream run NAME` as a child process, with its log in a file; kill, pause, resume and stop it. It leads a
    process group of its own and every signal goes to the whole group: `run projections` supervises a process per
    view, and pausing or killing "the projections" means all of them."""

    def __init__(self, settings: Settings, name: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.settings, self.name, self.log, self.env = settings, name, log, env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        self.log.touch()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orderstream.cli.main",
                "-b",
                self.settings.effective_bootstrap,
                "--topic-prefix",
                self.settings.topic_prefix,
                "--data-dir",
                str(self.settings.data_dir),
                "run",
                self.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
            env=os.environ | self._settings_env() | self.env,
            start_new_session=True,
        )
        return self

    def _settings_env(self) -> dict[str, str]:
        return {"ORDERSTREAM_DATABASE_URL": self.settings.database_url} if self.settings.database_url else {}

    def signal(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def wait_joined(services: list[ServiceProcess], timeout_s: float = 90.0) -> None:
    """Until each of these `run order` / `run projections` processes logged its first assignment (every view's, for
    the projections): they are past their start, which checks for the broker and fails without one, so an outage
    test must begin after it. Fails at once when one of them has exited."""
    from orderstream.views.registry import ALL_SPECS

    expected = {"order": ["order: assigned partitions"], "projections": [f"{v}: assigned" for v in ALL_SPECS]}

    def joined() -> bool:
        for service in services:
            assert service.alive(), f"{service.name} exited while starting:\n{service.tail()}"
        return all(line in s.log.read_text(errors="replace") for s in services for line in expected[s.name])

    wait_for(joined, timeout_s, f"the first assignment of {', '.join(s.name for s in services)}")


class LoadDriver:
    """Places orders from a thread at a steady rate with an idempotent producer; a command counts as acknowledged
    (and so must never be lost) only when the broker confirmed its delivery. Broker outages are endured, not raised."""

    def __init__(self, settings: Settings, history: History, rate: float = 100.0, customer: str = "cust-1") -> None:
        from confluent_kafka import Producer

        from orderstream.kafka.clients import producer_config

        self.settings, self.history, self.rate, self.customer = settings, history, rate, customer
        self.producer = Producer(producer_config(settings, **{"message.timeout.ms": 120_000}))
        self.sent = 0
        self.acknowledged: list[str] = []
        self.acknowledged_at: dict[str, float] = {}  # order id -> wall-clock time its command was acknowledged
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        topic = self.settings.topic("orders.commands")
        began = time.monotonic()
        while not self._stop.is_set():
            command = place_order(f"f-{uuid.uuid4().hex[:12]}", customer=self.customer)

            def delivered(err, _msg, command=command):
                with self._lock:
                    if err is None:
                        self.acknowledged.append(command.order_id)
                        self.acknowledged_at[command.order_id] = time.time()
                        self.history.command_acknowledged(command.command_id, command.order_id, True)
                    else:
                        self.failed.append(err.str())

            try:
                self.producer.produce(
                    topic, key=command.order_id.encode(), value=CODEC.encode(command), on_delivery=delivered
                )
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0)
            ahead = self.sent / self.rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)

    def start(self) -> LoadDriver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)
        self.producer.flush(120)


def observe_events(settings: Settings, history: History, expected_orders: int, timeout_s: float = 120.0) -> list:
    """Read orders.events (read_committed) until every acknowledged order has an OrderPlaced, feeding the history."""
    records = read_topic(
        settings,
        "orders.events",
        timeout_s=timeout_s,
        until=lambda events: sum(isinstance(e, OrderPlaced) for e in events) >= expected_orders,
    )
    for record, event in records:
        history.event_observed(record.topic(), record.partition(), record.offset(), event)
    return [event for _, event in records]


def observe_order_view(settings: Settings, history: History, orders: set[str], timeout_s: float = 120.0) -> None:
    """Wait until the order view shows every order, then feed its rows (order id, version) to the history."""
    from orderstream.views.registry import spec_of
    from orderstream.views.store import ProjectionStore

    store = ProjectionStore(settings.database_url_for("order-view"), spec_of("order-view"))
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                rows = store.dump()["orders"]
            except Exception:  # noqa: BLE001 - tables not created yet
                rows = []
            shown = {row[0] for row in rows}
            if orders <= shown or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        columns = [c.name for c in store.tables(store.ensure())["orders"].columns]
        version = columns.index("version")
        for row in rows:
            history.row_observed("order-view", row[0], row[version])
        missing = orders - shown
        assert not missing, f"the order view never showed {len(missing)} orders, e.g. {sorted(missing)[:3]}"
    finally:
        store.dispose()
