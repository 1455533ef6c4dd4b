"""What metrics and tracing cost: the same workloads with telemetry OFF (the default: no tracer, metrics in memory,
no server) and ON (metrics in prometheus-client's multiprocess mode as under `run all`, tracing at sampling 1.0
exported over OTLP/HTTP to a local sink, in a process of its own as a collector would be, that accepts and drops the
requests), alternated in one run.

- produce: the order service deciding a burst of PlaceOrder commands (consume -> decide -> produce, one Kafka
  transaction per batch), in-process; the burst is in orders.commands before the service starts, and commands/s run
  from its first committed batch to its last. With tracing on, each command carries a ce_traceparent (as `place`
  writes it) and gets its record span; each batch gets its batch span.
- rebuild: the order-view projector catching up on a filled orders.events (every record carrying a ce_traceparent,
  the worst case: batch links and one `apply` span per traced record, 128 per batch at most), into SQLite, in-process;
  events/s from the first batch applied to the last.
- end-to-end latency: bench/latency.py's measurement (order service and projections as subprocesses, orders sent at
  a fixed rate, seen = first poll of the order view with the row), with ORDERSTREAM_OTLP_ENDPOINT and the
  multiprocess metrics directory in the children's environment for the ON run.

The in-process workloads run with the garbage collector tuned as `orderstream run` tunes it (process_tuning.py):
with the default thresholds, the objects each span allocates trigger young-generation passes that cost the traced
side more than a real service pays. Each workload runs OFF, ON, ON, OFF (the burst, the shortest and most variable,
three times that, after one burst that warms the broker up and is not counted) and the best of each side is compared:
the machine's noise only ever adds time (other work, a cold cache), so a side's best run is its least disturbed
one. The mirrored order cancels a drift over the run (on this machine, runs late in a bench are slower: OFF, ON, OFF,
ON handed ON the later slots). The notes give each side's median too; with two runs a side, one disturbed run moves a
median (a mean, then) by half its disturbance.
python -m bench.telemetry [--quick]   (a broker from ORDERSTREAM_TEST_BOOTSTRAP_SERVERS, else bench's own).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.env import BenchEnv
from bench.otlp_sink import otlp_sink

GOAL = 0.05  # telemetry on may cost at most 5%
MIRRORED = ("off", "on", "on", "off")  # a drift over the run weighs on both sides alike
PRODUCE_ROUNDS = 3  # the burst runs MIRRORED three times (the other workloads once): its runs swing 20% alike


@contextlib.contextmanager
def tracing_on(endpoint: str) -> Iterator[None]:
    """Tracing for components built inside the block: sampling 1.0, batch processor, OTLP/HTTP to the sink."""
    from orderstream.telemetry import tracing

    provider = tracing.new_provider("bench", sampling_ratio=1.0)
    provider.add_span_processor(tracing.otlp_processor(endpoint))  # what configure() sets up for otlp_endpoint
    tracing.install(provider)
    try:
        yield
    finally:
        tracing.uninstall()
        provider.shutdown()


def _traceparent() -> bytes:
    return f"00-{random.getrandbits(127) + 1:032x}-{random.getrandbits(63) + 1:016x}-01".encode()


def _counter(metric, **labels) -> float:
    return sum(
        s.value
        for family in metric.collect()
        for s in family.samples
        if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items())
    )


# --- produce: the order service deciding a burst ----------------------------------------------------------------


def produce_once(env: BenchEnv, commands: int, traced: bool) -> float:
    """The order service deciding a burst that is already in orders.commands when it starts: commands/s from its first
    committed batch to its last. The burst is produced before the service starts, so the bench's own producer (plan,
    encode, produce) neither runs in the measured window nor competes for the service's GIL, a cost no deployment
    pays (the CLI and the API produce from processes of their own)."""
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config
    from orderstream.producers.load_plan import LoadProfile, plan_commands
    from orderstream.schemas.codec import Codec
    from orderstream.services.composition import build_service
    from orderstream.telemetry import metrics
    from orderstream.topology import ORDERS_COMMANDS
    from tests.support.orders import RunningService

    settings = env.fresh(data_dir=env.workdir / f"produce-{time.monotonic_ns()}")
    plan = plan_commands(LoadProfile(orders=commands, seed=7, cancel_ratio=0.0), lambda: _now())
    codec = Codec()
    topic = settings.topic(ORDERS_COMMANDS)
    producer = Producer(producer_config(settings, **{"linger.ms": 5}))
    for command in plan:
        headers = codec.headers(command, "orderstream/bench")
        if traced:
            headers.append(("ce_traceparent", _traceparent()))
        producer.produce(topic, codec.encode(command), command.order_id.encode(), headers=headers)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("the burst's commands were not all acknowledged")
    # The plan's commands would stay alive through the burst, half a million objects in the collector's younger
    # generations that a service never has: a generation-1 pass over them took 0.2 s of a 7 s burst.
    del plan, producer
    gc.collect()
    stage = {"service": "order", "stage": "order", "topic": "orders.commands"}
    before = _counter(metrics.records_in, **stage)
    service = RunningService(build_service("order", settings)).start()
    try:
        return _rate_after_first(lambda: _counter(metrics.records_in, **stage) - before, commands, service, 300)
    finally:
        service.stop()


def _rate_after_first(done: Callable[[], float], total: int, running, timeout_s: float) -> float:
    """Items/s of a running service from the poll that first sees some done to the one that sees all `total` done
    (polled every 5 ms; RuntimeError when it stops or has not finished within `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    first = None
    while True:
        count = done()
        now = time.perf_counter()
        if first is None and count > 0:
            first = (now, count)
        if count >= total:
            return (total - first[1]) / (now - first[0])
        if time.monotonic() > deadline or not running.thread.is_alive():
            raise RuntimeError(f"{running.service.name} stopped or stalled at {count}/{total}: {running.error}")
        time.sleep(0.005)


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


# --- rebuild: the order-view projector catching up -----------------------------------------------------------------


def fill_traced(env: BenchEnv, events: int):
    """orders.events with `events` order events (bench.fill's histories), each order's events in one trace."""
    from confluent_kafka import Producer

    from bench.fill import order_events
    from orderstream.kafka.clients import producer_config
    from orderstream.schemas.codec import Codec
    from orderstream.topology import ORDERS_EVENTS

    settings = env.fresh()
    codec = Codec()
    producer = Producer(
        producer_config(
            settings, **{"linger.ms": 50, "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000}
        )
    )
    topic = settings.topic(ORDERS_EVENTS)
    contexts: dict[str, bytes] = {}
    stream = order_events()
    for n in range(events):
        event = next(stream)
        context = contexts.setdefault(event.order_id, _traceparent())
        headers = [*codec.headers(event, "orderstream/bench"), ("ce_traceparent", context)]
        while True:
            try:
                producer.produce(topic, codec.encode(event), event.order_id.encode(), headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        if n % 2000 == 0:
            producer.poll(0)
    if producer.flush(300):
        raise RuntimeError("fill: records unacknowledged")
    return settings


def rebuild_once(env: BenchEnv, filled, events: int) -> float:
    from orderstream.runtime.projector import Projector
    from orderstream.telemetry import metrics
    from orderstream.views.registry import spec_of
    from tests.support.orders import RunningService

    workdir = Path(tempfile.mkdtemp(dir=env.workdir))
    settings = filled.model_copy(update={"data_dir": workdir, "database_url": None})
    view = f"order-view-{workdir.name}"  # its own consumer group and database
    projector = Projector(
        settings, spec_of("order-view"), database_url=f"sqlite:///{workdir / 'view.db'}", group_id=view
    )
    applied = metrics.view_events_applied

    def count() -> float:
        return _counter(applied, view="order-view")

    base = count()
    running = RunningService(projector).start()
    try:
        return _rate_after_first(lambda: count() - base, events, running, 600)
    finally:
        running.stop()


# --- end-to-end latency ------------------------------------------------------------------------------------------


def latency_once(env: BenchEnv, rate: float, seconds: float, warm: float, endpoint: str | None) -> dict[str, float]:
    """p50 and p99 of bench/latency.py's measurement, ms (ON: tracing and multiprocess metrics in the children)."""
    from bench.latency import bench_latency

    patched: dict[str, str] = {}
    directory = None
    if endpoint is not None:
        directory = tempfile.mkdtemp(dir=env.workdir, prefix="metrics-")
        patched = {
            "ORDERSTREAM_OTLP_ENDPOINT": endpoint,
            "ORDERSTREAM_TRACE_SAMPLING_RATIO": "1.0",
            "PROMETHEUS_MULTIPROC_DIR": directory,
            "ORDERSTREAM_METRICS_SUPERVISED": "1",
        }
    saved = {k: os.environ.get(k) for k in patched}
    os.environ.update(patched)
    try:
        rows = bench_latency(env, rate=rate, seconds=seconds, warm_seconds=warm)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if directory is not None and not any(Path(directory).glob("*.db")):
        raise RuntimeError("the ON run's children wrote no multiprocess metrics")
    return {q: next(r["value"] for r in rows if r["benchmark"].endswith(q)) for q in ("p50", "p99")}


# --- the comparison ----------------------------------------------------------------------------------------------


def bench_telemetry(env: BenchEnv, scale: float) -> list[dict]:
    commands = max(5_000, int(50_000 * scale))
    events = max(100_000, int(1_000_000 * scale))
    rate, seconds, warm = 500, max(6.0, 20 * scale), max(4.0, 60 * scale)
    results: dict[str, dict[str, list[float]]] = {
        k: {"off": [], "on": []} for k in ("produce", "rebuild", "latency p50", "latency p99")
    }
    with otlp_sink(env.workdir) as sink:
        endpoint = sink.endpoint
        warm_up = produce_once(env, commands, traced=False)
        print(f"  telemetry warm-up: produce {warm_up:,.1f} (not counted)", flush=True)
        for side in MIRRORED * PRODUCE_ROUNDS:  # the burst is short and swings most: more alternations
            with tracing_on(endpoint) if side == "on" else contextlib.nullcontext():
                results["produce"][side].append(produce_once(env, commands, traced=side == "on"))
            print(f"  telemetry {side}: produce {results['produce'][side][-1]:,.1f}", flush=True)
        for side in MIRRORED:
            on = side == "on"
            with tracing_on(endpoint) if on else contextlib.nullcontext():
                # a fresh fill each time: the shared broker's topics may be cleaned up by others meanwhile
                results["rebuild"][side].append(rebuild_once(env, fill_traced(env, events), events))
            latency = latency_once(env, rate, seconds, warm, endpoint if on else None)
            results["latency p50"][side].append(latency["p50"])
            results["latency p99"][side].append(latency["p99"])
            print(
                f"  telemetry {side}: "
                + ", ".join(f"{k} {v[side][-1]:,.1f}" for k, v in results.items() if k != "produce"),
                flush=True,
            )
    exported = sink.received
    if not exported["requests"]:
        raise RuntimeError("no span was exported to the sink in the ON runs")
    rows = []
    for name, unit, higher_is_better, label in (
        ("produce", "commands/s", True, "order service deciding a burst of PlaceOrder (in-process)"),
        ("rebuild", "events/s", True, f"order-view projector catching up on {events:,} events into SQLite"),
        ("latency p50", "ms", False, "end-to-end latency p50, place -> visible in order view (subprocesses)"),
        ("latency p99", "ms", False, "end-to-end latency p99, place -> visible in order view (subprocesses)"),
    ):
        best = max if higher_is_better else min
        off, on = best(results[name]["off"]), best(results[name]["on"])
        median_off, median_on = statistics.median(results[name]["off"]), statistics.median(results[name]["on"])
        cost, median_cost = _cost(off, on, higher_is_better), _cost(median_off, median_on, higher_is_better)
        rows.append(
            {
                "benchmark": f"telemetry cost: {label}",
                "value": round(cost * 100, 1),
                "unit": "%",
                "goal": f"<= {GOAL * 100:g}",
                "met": cost <= GOAL,
                "notes": f"best of {len(results[name]['off'])}: off {off:,.1f} {unit}, on {on:,.1f} {unit}; "
                f"medians: off {median_off:,.1f}, on {median_on:,.1f} ({median_cost * 100:.1f}%) (all off "
                f"{[round(v, 1) for v in results[name]['off']]}, on {[round(v, 1) for v in results[name]['on']]}); "
                f"on = tracing at 1.0 over OTLP/HTTP ({exported['requests']} exports, {exported['bytes']:,} B) "
                "+ metrics",
            }
        )
    return rows


def _cost(off: float, on: float, higher_is_better: bool) -> float:
    """What ON costs against OFF, as a share of OFF: throughput lost, or latency added."""
    return (off - on) / off if higher_is_better else (on - off) / off


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run, not a measurement)")
    args = parser.parse_args()
    scale = 0.05 if args.quick else 1.0
    from orderstream.process_tuning import tune_collector

    tune_collector()  # as `orderstream run` does: the in-process workloads run with the services' GC settings
    external = os.environ.get("ORDERSTREAM_TEST_BOOTSTRAP_SERVERS")
    if external:
        from orderstream.config import load_settings

        with tempfile.TemporaryDirectory(prefix="orderstream-bench-") as tmp:
            settings = load_settings(bootstrap_servers=external, data_dir=Path(tmp) / "data")
            env = BenchEnv(settings, Path(tmp), None, "", None)  # type: ignore[arg-type]
            rows = bench_telemetry(env, scale)
    else:
        from bench.env import bench_env

        with bench_env() as env:
            rows = bench_telemetry(env, scale)
    for row in rows:
        print(f"| {row['benchmark']} | {row['value']} {row['unit']} | {row['goal']} | {row['met']} | {row['notes']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
