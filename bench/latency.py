"""End-to-end latency: from sending a PlaceOrder command to the order being visible in the order view.

The order service (`run order`) and the projections (`run projections`: a process per view, of which the order-,
customer- and sales-view have work here) run as their own processes, exactly as deployed, on the bench broker; their
views are SQLite files under their --data-dir. This process sends PlaceOrder commands at a fixed rate with the
idempotent producer (what `place` does, without starting a CLI process per command) and, in another thread, polls the
order view's table for rows inserted since its last poll (read-only sqlite3, every millisecond). Latency = first poll
that sees the order row - the moment produce() was called. It includes the producer's acknowledgement, the order
service's consume/decide/transaction commit, the projector's read_committed consume and SQL commit, and up to one poll
interval (~1-3 ms) of the observer; it does not include a CLI process start.

The per-hop budget splits each order's latency at timestamps the records and rows carry, all on this machine's clock:
- sent: the wall clock at produce() (this process);
- decided: the order's placed_at in the view row (the OrderPlaced event's occurred_at, set by the order service when
  it decides);
- produced: the OrderPlaced record's Kafka timestamp (CreateTime, set by the order service's transactional producer);
- committed: when a read_committed side consumer of orders.events (in this process) receives the record: the
  transaction committed then, plus one fetch. It fetches as the projector does (live_fetch_wait_max_ms, 10 ms), so
  hop 4 is the projector's own work, not its fetch timing. A side reader at fetch.wait.max.ms=1 sent the broker a
  thousand empty fetches a second, more than every service's consumer together, and the measured latency paid for it:
  in alternating runs (2026-12-07) p99 112.8, 139.4, 84.0 ms at 1 ms against 95.0, 82.3, 73.3 at 10 ms, the broker
  at 0.82-1.14 cores against 0.50-0.81;
- visible: the observer's first poll that sees the row.
Hops: produce + order service poll + decide (sent -> decided), event produce (decided -> produced), transaction
commit (produced -> committed), projector fetch + fold + SQL commit + observer poll (committed -> visible). Each is
reported at p50 and p99, with its share of the latency of the slowest 1% of orders (which hop the tail is made of).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from bench.env import BenchEnv

POLL_INTERVAL_S = 0.001


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of values (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def place_at_rate(producer, topic: str, commands, count: int, per_second: float, on_send=None) -> None:
    """Produce `count` commands from the iterator `commands` at `per_second` on a fixed schedule (what `place` does,
    without a CLI process per command); on_send(order_id) is called just before each produce(). Flushes at the end."""
    from orderstream.schemas.codec import Codec

    codec = Codec()
    began = time.perf_counter()
    for n in range(count):
        command = next(commands)
        value, headers = codec.encode(command), codec.headers(command, "orderstream/bench")
        ahead = began + n / per_second - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        if on_send is not None:
            on_send(command.order_id)
        producer.produce(topic, value, command.order_id.encode(), headers=headers)
        producer.poll(0)
    producer.flush(30)


def warm_up_broker(settings, per_second: float = 500, seconds: float = 60) -> None:
    """Place orders at `per_second` for `seconds` through whatever services run on `settings`' topics, and wait for
    the producer's acknowledgements: a broker started minutes earlier commits transactions several times slower
    until its JIT has compiled the transactional paths (see bench_latency's warm-up)."""
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config
    from orderstream.producers.load_plan import LoadProfile, plan_commands
    from orderstream.topology import ORDERS_COMMANDS

    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    commands = plan_commands(LoadProfile(orders=10_000_000, seed=1, cancel_ratio=0.0), lambda: datetime.now(UTC))
    place_at_rate(producer, settings.topic(ORDERS_COMMANDS), commands, int(per_second * seconds), per_second)


def bench_latency(env: BenchEnv, rate: float, seconds: float, warm_seconds: float = 60.0) -> list[dict]:
    import sqlite3

    from confluent_kafka import Producer
    from sqlalchemy.engine import make_url

    from orderstream.kafka.clients import producer_config
    from orderstream.producers.load_plan import LoadProfile, plan_commands
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
    spy = ["py-spy", "record", "-f", "raw", "-r", "250", "--subprocesses"]  # `run projections` supervises its views
    spies = (
        [
            subprocess.Popen(
                [*spy, "-o", f"{profile_dir}/{name}.txt", "-p", str(child.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, child in zip(("order", "projections"), children, strict=True)
        ]
        if profile_dir
        else []
    )
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    topic = settings.topic(ORDERS_COMMANDS)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    seen_wall: dict[str, float] = {}
    decided: dict[str, str] = {}  # order id -> placed_at text of its row
    committed: dict[str, tuple[float, float]] = {}  # order id -> (record CreateTime, side-consumer receive), seconds
    lock = threading.Lock()
    side_stop = threading.Event()
    commands = plan_commands(
        LoadProfile(orders=10_000_000, seed=random.randrange(1 << 30), cancel_ratio=0.0), lambda: datetime.now(UTC)
    )

    def noted(order_id: str) -> None:
        with lock:
            sent[order_id] = time.perf_counter()
            sent_wall[order_id] = time.time()

    def send(count: int, per_second: float) -> None:
        place_at_rate(producer, topic, commands, count, per_second, noted)

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
                found = reader.execute(
                    f'SELECT rowid, order_id, placed_at FROM "{name}" WHERE rowid > ?', (last,)
                ).fetchall()
                now, wall = time.perf_counter(), time.time()
                for rowid, oid, placed_at in found:
                    if oid in sent and oid not in seen:  # not a warm-up order
                        seen[oid], seen_wall[oid], decided[oid] = now, wall, placed_at
                    last = max(last, rowid)
                time.sleep(POLL_INTERVAL_S)
        finally:
            reader.close()

    def side_consume() -> None:
        """Receive orders.events read_committed as the projector does, noting when each order's first record arrives
        (the moment its transaction became visible, plus one fetch)."""
        from confluent_kafka import Consumer

        from orderstream.kafka.clients import consumer_config, live_fetch_wait_ms
        from orderstream.topology import ORDERS_EVENTS

        group, wait = f"{settings.topic_prefix}bench.latency.side", live_fetch_wait_ms(settings)
        config = consumer_config(settings, group, **{"fetch.wait.max.ms": wait})
        consumer = Consumer({**config, "enable.auto.commit": False, "auto.offset.reset": "latest"})
        consumer.subscribe([settings.topic(ORDERS_EVENTS)])
        try:
            while not side_stop.is_set():
                first = consumer.poll(0.05)  # returns at the first record (consume() would wait to fill a batch)
                if first is None:
                    continue
                received = time.time()
                for message in [first, *consumer.consume(num_messages=500, timeout=0)]:
                    if message.error() is None and message.key() is not None:
                        oid = message.key().decode()
                        if oid in sent and oid not in committed:
                            committed[oid] = (message.timestamp()[1] / 1000, received)
        finally:
            consumer.close()

    side = threading.Thread(target=side_consume, daemon=True)
    try:
        side.start()
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
        side_stop.set()
        side.join(10)
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
    p50, p99, p999 = (percentile(latencies, q) for q in (0.5, 0.99, 0.999))
    note = (
        f"{count:,} orders at {rate:g}/s for {seconds:g}s after {warm_seconds:g}s of warm-up at that rate; order "
        f"service + projections as subprocesses (SQLite); max {max(latencies):.1f} ms"
        + (f"; {missing} never visible" if missing else "")
    )
    return [
        *_hop_rows(sent, seen, sent_wall, seen_wall, decided, committed),
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


def bench_latency_runs(env: BenchEnv, rate: float, seconds: float, warm_seconds: float, runs: int = 3) -> list[dict]:
    """bench_latency `runs` times in a row, each on fresh topics and fresh service processes (issue 22: p99 <= 100 ms
    in three runs in a row). Rows: each run's p50, p99 and p99.9, the per-hop budget of the run with the worst p99,
    and whether every run met the p99 goal."""
    results = [bench_latency(env, rate, seconds, warm_seconds) for _ in range(runs)]
    p99s = [_value(rows, "p99") for rows in results]
    worst = max(range(runs), key=lambda n: p99s[n])
    rows = [row for row in results[worst] if row["benchmark"].startswith("latency budget")]
    for row in rows:
        row["notes"] += f"; run {worst + 1} of {runs} (the worst p99)"
    for n, run in enumerate(results, start=1):
        for row in run:
            if not row["benchmark"].startswith("latency budget"):
                rows.append({**row, "benchmark": f"{row['benchmark']} (run {n} of {runs})"})
    rows.append(
        {
            "benchmark": f"end-to-end latency place -> visible in order view, p99 in {runs} runs in a row",
            "value": round(max(p99s), 1),
            "unit": "ms",
            "goal": "<= 100 in every run",
            "met": all(row["met"] for run in results for row in run if row["benchmark"].endswith(", p99")),
            "notes": "the worst of the runs' p99: " + ", ".join(f"{p:.1f}" for p in p99s) + " ms",
        }
    )
    return rows


def _value(rows: list[dict], quantile: str) -> float:
    return next(row["value"] for row in rows if row["benchmark"].endswith(f", {quantile}"))


HOPS = (
    "produce + order service poll + decide",
    "event produce (decide -> record timestamp)",
    "transaction commit (-> read_committed fetch)",
    "projector fetch + fold + SQL commit + observer poll",
)


def _hop_rows(sent, seen, sent_wall, seen_wall, decided, committed) -> list[dict]:
    """The per-hop budget (see the module docstring): one row per hop, p50 as the value, p99 and its share of the
    slowest 1% of orders' latency in the notes."""
    from datetime import datetime

    hops: dict[str, list[float]] = {}
    for oid in seen:
        if oid not in committed:
            continue
        at_decide = datetime.strptime(decided[oid], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
        produced, received = committed[oid]
        marks = (sent_wall[oid], at_decide, produced, received, seen_wall[oid])
        hops[oid] = [(b - a) * 1000 for a, b in pairwise(marks)]
    if not hops:
        return [{"benchmark": "latency budget per hop", "value": None, "unit": "ms", "goal": "", "met": None,
                 "notes": "no order was seen by both the side consumer and the observer"}]  # fmt: skip
    slowest = sorted(hops, key=lambda oid: seen[oid] - sent[oid])[-max(1, len(hops) // 100) :]
    notes = (
        f"{len(hops):,} orders (timestamps on one clock: produce() call, the row's placed_at, the record's "
        "CreateTime, a read_committed side consumer's receipt, the observer's poll)"
    )
    return hop_budget_rows(hops, slowest, HOPS, "latency budget", "orders' latency", notes)


def hop_budget_rows(
    hops: dict[Any, list[float]], slowest: list, names: Sequence[str], label: str, tail: str, notes: str
) -> list[dict]:
    """One row per hop of a latency budget: its p50 as the value, its p99 and its share of the slowest 1%'s time in
    the notes. `hops` holds each item's time per hop, in ms; `slowest` the keys of the slowest 1%."""
    tail_total = sum(sum(hops[key]) for key in slowest) or 1.0
    rows = []
    for n, hop in enumerate(names):
        values = [parts[n] for parts in hops.values()]
        share = sum(hops[key][n] for key in slowest) / tail_total
        rows.append(
            {
                "benchmark": f"{label}, hop {n + 1}: {hop}, p50",
                "value": round(percentile(values, 0.5), 1),
                "unit": "ms",
                "goal": "",
                "met": None,
                "notes": f"p99 {percentile(values, 0.99):.1f} ms; {share:.0%} of the slowest 1% {tail}; {notes}",
            }
        )
    return rows
