"""End-to-end latency: from sending a PlaceOrder command to the order being visible in the order view.

The order service (`run order`) and the projections (`run projections`: order-, customer- and sales-view) run as their
own processes, exactly as deployed, on the bench broker; their views are SQLite files under their --data-dir. This
process sends PlaceOrder commands at a fixed rate with the idempotent producer (what `place` does, without starting a
CLI process per command) and, in another thread, polls the order view's table for rows inserted since its last poll
(read-only sqlite3, every millisecond). Latency = first poll that sees the order row - the moment produce() was called.
It includes the producer's acknowledgement, the order service's consume/decide/transaction commit, the projector's
read_committed consume and SQL commit, and up to one poll interval (~1-3 ms) of the observer; it does not include a
CLI process start.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from bench.env import BenchEnv

POLL_INTERVAL_S = 0.001


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def bench_latency(env: BenchEnv, rate: float, seconds: float, warm_seconds: float = 60.0) -> list[dict]:
    import sqlite3

    from confluent_kafka import Producer
    from sqlalchemy.engine import make_url

    from orderstream.kafka.clients import producer_config
    from orderstream.producers.load_plan import LoadProfile, plan_commands
    from orderstream.schemas.codec import Codec
    from orderstream.topology import ORDERS_COMMANDS
    from orderstream.views.queries import ReadModel
    from orderstream.views.store import database_exists

    settings = env.fresh()
    data_dir = env.workdir / f"latency-{settings.topic_prefix.rstrip('.')}"
    settings = settings.model_copy(update={"data_dir": data_dir, "database_url": None})
    url = settings.database_url_for("order-view")
    base = [
        sys.executable,
        "-m",
        "orderstream.cli.main",
        "-b",
        settings.effective_bootstrap,
        "--topic-prefix",
        settings.topic_prefix,
        "--data-dir",
        str(data_dir),
    ]
    child_env = {k: v for k, v in os.environ.items() if k != "ORDERSTREAM_DATABASE_URL"}
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = open(data_dir / "services.log", "w")  # noqa: SIM115 - closed in finally
    children = [
        subprocess.Popen([*base, "run", name], stdout=logs, stderr=subprocess.STDOUT, env=child_env)
        for name in ("order", "projections")
    ]
    profile_dir = os.environ.get("ORDERSTREAM_BENCH_PROFILE_DIR")  # py-spy the services (raw folded stacks)
    spies = (
        [
            subprocess.Popen(
                ["py-spy", "record", "-f", "raw", "-r", "250", "-o", f"{profile_dir}/{name}.txt", "-p", str(child.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, child in zip(("order", "projections"), children, strict=True)
        ]
        if profile_dir
        else []
    )
    codec = Codec()
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    topic = settings.topic(ORDERS_COMMANDS)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    commands = plan_commands(
        LoadProfile(orders=10_000_000, seed=random.randrange(1 << 30), cancel_ratio=0.0), lambda: datetime.now(UTC)
    )

    def send(count: int, per_second: float) -> None:
        began = time.perf_counter()
        for n in range(count):
            command = next(commands)
            value, headers = codec.encode(command), codec.headers(command, "orderstream/bench")
            ahead = began + n / per_second - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            with lock:
                sent[command.order_id] = time.perf_counter()
            producer.produce(topic, value, command.order_id.encode(), headers=headers)
            producer.poll(0)
        producer.flush(30)

    def watch(model, until: float, expected: int) -> None:
        """Poll the view for orders inserted since the last poll (rowid only grows: an insert takes max(rowid) + 1 and
        an update keeps its row's), on a plain read-only sqlite3 connection: the observer's own CPU stays a few
        percent of a core, so it does not slow down the services it measures on this 2-core machine."""
        with model.reading() as (_, tables):
            name = tables["orders"].name
        reader = sqlite3.connect(f"file:{make_url(url).database}?mode=ro", uri=True, isolation_level=None)
        last = 0
        try:
            while time.perf_counter() < until and len(seen) < expected:
                found = reader.execute(f'SELECT rowid, order_id FROM "{name}" WHERE rowid > ?', (last,)).fetchall()
                now = time.perf_counter()
                for rowid, oid in found:
                    if oid in sent:  # not a warm-up order
                        seen.setdefault(oid, now)
                    last = max(last, rowid)
                time.sleep(POLL_INTERVAL_S)
        finally:
            reader.close()

    try:
        deadline = time.perf_counter() + 120
        while not database_exists(url):
            if time.perf_counter() > deadline or any(c.poll() is not None for c in children):
                raise RuntimeError(f"services did not start; see {data_dir / 'services.log'}")
            time.sleep(0.2)
        with ReadModel(url, "order-view") as model:
            for _ in range(600):  # wait until the view's tables are there
                try:
                    with model.reading():
                        break
                except Exception:  # noqa: BLE001
                    time.sleep(0.2)
            # warm-up at the measured rate, discarded: group joins, the order service's state rebuild, connections,
            # caches and the broker's JIT (a broker started a minute earlier commits transactions several times
            # slower; at 500 orders/s, 10 s of warm-up left p50 at 65-95 ms and p99 at 124-357 ms, 60 s 28-65 / 78-286)
            warm = int(rate * warm_seconds)
            sender = threading.Thread(target=send, args=(warm, rate))
            sender.start()
            watch(model, time.perf_counter() + warm_seconds + 60, warm)
            sender.join()
            if len(seen) < warm:
                raise RuntimeError(
                    f"only {len(seen)}/{warm} warm-up orders became visible; see {data_dir / 'services.log'}"
                )
            sent.clear()
            seen.clear()
            count = int(rate * seconds)
            sender = threading.Thread(target=send, args=(count, rate))
            began = time.perf_counter()
            sender.start()
            watch(model, began + seconds + 30, count)
            sender.join()
    finally:
        for child in [*spies, *children]:
            if child.poll() is None:
                child.send_signal(signal.SIGINT if child in spies else signal.SIGTERM)
        for spy in spies:
            spy.wait(30)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        logs.close()
    latencies = [(seen[oid] - sent[oid]) * 1000 for oid in sent if oid in seen]
    missing = count - len(latencies)
    p50, p99, p999 = (_percentile(latencies, q) for q in (0.5, 0.99, 0.999))
    note = (
        f"{count:,} orders at {rate:g}/s for {seconds:g}s after {warm_seconds:g}s of warm-up at that rate; order "
        f"service + projections as subprocesses (SQLite); max {max(latencies):.1f} ms"
        + (f"; {missing} never visible" if missing else "")
    )
    return [
        {
            "benchmark": "end-to-end latency place -> visible in order view, p50",
            "value": round(p50, 1),
            "unit": "ms",
            "goal": "",
            "met": None,
            "notes": note,
        },
        {
            "benchmark": "end-to-end latency place -> visible in order view, p99",
            "value": round(p99, 1),
            "unit": "ms",
            "goal": "<= 100",
            "met": p99 <= 100 and not missing,
            "notes": "send time = produce() call; seen = first poll with the row",
        },
        {
            "benchmark": "end-to-end latency place -> visible in order view, p99.9",
            "value": round(p999, 1),
            "unit": "ms",
            "goal": "",
            "met": None,
            "notes": "",
        },
    ]
