"""The HTTP API under load (`orderstream serve`, one uvicorn worker, access log off), every figure next to a trivial
endpoint of the same server measured in the same run.

1. GET /orders/{id} on an order view of N orders (SQLite, filled directly as bench/query.py does), random ids, with
   wrk (Debian's `wrk`): at a set rate (RATE_CONNECTIONS connections, each waiting through a random Lua delay() between
   requests, so about 1,000 requests/s; wrk times each request from its send, so the delay is not latency), p99; then
   at full speed (peak requests/s) next to GET /healthz at full speed: their ratio.
2. POST /orders then GET /orders/{id}?after=<token>, one pair per order at 100 orders/s on a fixed schedule (an
   asyncio httpx client: wrk cannot chain a request on the answer of the previous one), against what the path
   crosses (`run order`, `run projections`, `serve`, as bench/latency.py runs the order service and projections);
   p99 of the pair, next to GET /healthz pairs on the same schedule; and the pair's per-hop budget, split at
   timestamps on this machine's one clock (as bench/latency.py's):
   - sent: the wall clock when the client sends POST /orders;
   - produced: the PlaceOrder command record's Kafka timestamp (CreateTime: set at the API's produce() call);
   - decided: the order's placed_at in the GET answer (the OrderPlaced event's occurred_at, set by the order service);
   - committed: when a read_committed side consumer (a thread of this process, fetching as the projectors and the
     reply reader do: see bench/latency.py) receives the OrderPlaced record: its transaction committed then, plus one
     fetch;
   - answered: the client has the POST's answer (the API read the reply: committed in the same transaction);
   - read: the client has the GET ?after answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from datetime import UTC
from itertools import pairwise
from pathlib import Path

from bench.env import BenchEnv
from bench.latency import hop_budget_rows, percentile, warm_up_broker

# About 1,000 requests/s: each connection waits a random 0..2*RATE_DELAY_MS ms between a response and its next request.
# Rate = connections / (mean delay + latency): 10 connections pacing 10 ms reached 1,000/s only for a request of no
# latency at all (GET /healthz made 947/s), and equal delays keep connections in step, sending in bursts; random
# delays spread the requests out. 40 connections at a mean 40 ms made 925-972 requests/s (a request of 1-2.3 ms at
# p50), short of the goal's rate: 43 make 1,050/s at 1 ms and 1,000/s at 3 ms.
RATE_CONNECTIONS, RATE_DELAY_MS = 43, 40
PEAK_CONNECTIONS = 32
BROKER_WARM_RATE = 500  # orders per second placed before the pairs (for broker_warm_seconds), as bench/latency.py does

_RANDOM_ORDER = """
math.randomseed(7)
request = function()
  return wrk.format("GET", string.format("/orders/o-%09d", math.random(0, {orders} - 1)))
end
"""
_DELAY = "delay = function() return math.random(0, 2 * {delay}) end\n"
_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def _serve(settings, log: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    from tests.support.api_server import free_port

    port = free_port()
    root = ["-b", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix]
    root += ["--data-dir", str(settings.data_dir)]
    child_env = os.environ | {"ORDERSTREAM_LOG_LEVEL": "WARNING", "ORDERSTREAM_API_PORT": str(port)} | (env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "orderstream.cli.main", *root, *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=child_env,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for(url, process, log)
    return process, url


PATH_SERVICES = ("order", "projections")  # what a placed order crosses on its way to GET ?after (as bench/latency.py)


def _service(settings, name: str, log: Path) -> subprocess.Popen:
    root = ["-b", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix]
    root += ["--data-dir", str(settings.data_dir)]
    return subprocess.Popen(
        [sys.executable, "-m", "orderstream.cli.main", *root, "run", name],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=os.environ | {"ORDERSTREAM_LOG_LEVEL": "WARNING"},
    )


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout_s}s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _wrk(url: str, path: str, script: str, workdir: Path, connections: int, seconds: float) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package `wrk`: scripts/setup-system.sh installs it)")
    lua = workdir / f"wrk-{abs(hash(script))}.lua"
    lua.write_text(script + _REPORT)
    threads = min(2, connections)
    result = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, int(seconds))}s", "-s", str(lua), url + path],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    line = next(x for x in reversed(result.stdout.splitlines()) if x.startswith("{"))
    report = json.loads(line)
    report["rate"] = report["requests"] / report["seconds"]
    return report


def _fill(settings, orders: int) -> float:
    from bench.query import _fill as fill_order_view
    from orderstream.views.registry import spec_of
    from orderstream.views.store import ProjectionStore

    url = settings.database_url_for("order-view")
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    store = ProjectionStore(url, spec_of("order-view"), writer=True)
    began = time.perf_counter()
    try:
        fill_order_view(store, orders)
    finally:
        store.dispose()
    return time.perf_counter() - began


def _disk_reads(pid: int) -> int:
    """Bytes process `pid` has had read from storage (/proc/<pid>/io read_bytes): page-cache misses. This VM's
    kernel evicts file pages nobody touched for a while, even with most memory free: a random read of a 1M-order
    view then waits on the disk, the tail of the p99."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/io has no read_bytes")


WORKERS = 1  # uvicorn worker processes for the GET benchmark (`serve --workers`); the rows name the count


def bench_http_reads(env: BenchEnv, orders: int, seconds: float = 10.0) -> list[dict]:
    settings = env.settings.model_copy(
        update={"topic_prefix": "benchhttp.", "data_dir": env.workdir / "http", "database_url": None}
    )
    fill_seconds = _fill(settings, orders)
    server, url = _serve(settings, env.workdir / "http-serve.log", ["serve", "--workers", str(WORKERS)])
    try:
        random_order = _RANDOM_ORDER.format(orders=orders)
        _wrk(url, "/healthz", "", env.workdir, PEAK_CONNECTIONS, 2)  # warm up the server
        _wrk(url, "/", random_order, env.workdir, PEAK_CONNECTIONS, 2)
        read_before = _disk_reads(server.pid)
        paced = _wrk(
            url, "/", random_order + _DELAY.format(delay=RATE_DELAY_MS), env.workdir, RATE_CONNECTIONS, seconds
        )
        read_during = _disk_reads(server.pid) - read_before
        trivial_paced = _wrk(
            url, "/healthz", _DELAY.format(delay=RATE_DELAY_MS), env.workdir, RATE_CONNECTIONS, seconds
        )
        peak = _wrk(url, "/", random_order, env.workdir, PEAK_CONNECTIONS, seconds)
        trivial_peak = _wrk(url, "/healthz", "", env.workdir, PEAK_CONNECTIONS, seconds)
    finally:
        _stop(server)
    p99_ms = paced["p99_us"] / 1000
    ok = paced["errors"] == paced["non2xx"] == 0
    where = f"{orders:,} orders, SQLite, {WORKERS} uvicorn worker{'s' if WORKERS > 1 else ''}, wrk"
    return [
        {
            "benchmark": f"HTTP GET /orders/{{id}} p99 at ~{paced['rate']:,.0f} req/s ({where})",
            "value": round(p99_ms, 2),
            "unit": "ms",
            "goal": "<= 5 at 1,000 req/s",
            "met": ok and p99_ms <= 5 and paced["rate"] >= 950,
            "notes": (
                f"p50 {paced['p50_us'] / 1000:.2f} ms; {RATE_CONNECTIONS} connections, each pausing a random "
                f"0-{2 * RATE_DELAY_MS} ms between requests; "
                f"trivial GET /healthz same pacing: p99 {trivial_paced['p99_us'] / 1000:.2f} ms at "
                f"{trivial_paced['rate']:,.0f} req/s; errors {paced['errors']}, non-2xx {paced['non2xx']}; "
                f"view filled in {fill_seconds:.0f}s; the server read {read_during / 2**20:.1f} MiB from disk "
                "meanwhile (view pages the OS had evicted from its cache)"
            ),
        },
        {
            "benchmark": f"HTTP GET /orders/{{id}} peak req/s, as a ratio to GET /healthz ({where})",
            "value": round(peak["rate"] / trivial_peak["rate"], 3),
            "unit": "ratio",
            "goal": "",
            "met": None,
            "notes": (
                f"{peak['rate']:,.0f} req/s (p99 {peak['p99_us'] / 1000:.1f} ms) vs /healthz "
                f"{trivial_peak['rate']:,.0f} req/s (p99 {trivial_peak['p99_us'] / 1000:.1f} ms), "
                f"{PEAK_CONNECTIONS} connections; errors {peak['errors']}, non-2xx {peak['non2xx']}"
            ),
        },
    ]


async def _paced_pairs(url: str, rate: float, seconds: float, pair) -> tuple[list[float], int, float]:
    """Start pair(client, n) at n / rate seconds on a fixed schedule, whatever the previous pairs are doing; the
    seconds each took, the failures, and the share of one core this load generator used meanwhile.

    Each pair borrows a client of one connection (a new one when all are busy) instead of sharing one httpx client:
    httpx's pool looks at every one of its connections on each request (several system calls each), so with tens of
    requests in flight one shared client used a whole core, fell behind the schedule and measured its own backlog
    (POST then GET ?after at 100 orders/s: p50 3.7 s, p99 17.6 s on the client while the server's own histogram had
    every request under 1 s and the server, order service and projections were all idle). The clients share one TLS
    context (unused: plain HTTP): building one per client took 62% of the load generator's time in py-spy."""
    import httpx

    times: list[float] = []
    failures = 0
    idle: list[httpx.AsyncClient] = []
    clients: list[httpx.AsyncClient] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()  # one for all: httpx builds one per client otherwise (tens of ms of CPU each)

    async def one(n: int) -> None:
        nonlocal failures
        if idle:
            client = idle.pop()
        else:
            client = httpx.AsyncClient(base_url=url, timeout=30, limits=limits, verify=tls)
            clients.append(client)
        start = time.perf_counter()
        try:
            await pair(client, n)
            times.append(time.perf_counter() - start)
        except (AssertionError, httpx.HTTPError):
            failures += 1
        finally:
            idle.append(client)

    tasks = []
    began, cpu_began = time.perf_counter(), time.process_time()
    try:
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        cpu_share = (time.process_time() - cpu_began) / (time.perf_counter() - began)
    finally:
        for client in clients:
            await client.aclose()
    return times, failures, cpu_share


def _place_then_read(marks: dict[str, tuple[float, float, float, str]]):
    """The pair: POST /orders, then GET /orders/{id}?after=<its token>; notes each order's client-side marks (sent,
    answered, read, on the wall clock) and its placed_at in `marks`."""

    async def pair(client, n: int) -> None:
        body = {"customer_id": f"c-{n % 500}", "currency": "EUR", "lines": [{"sku": "B-1", "quantity": 1,
                "unit_price_minor": 100}]}  # fmt: skip
        sent = time.time()
        placed = await client.post("/orders", json=body)
        answered = time.time()
        assert placed.status_code == 201, placed.text
        answer = placed.json()
        read = await client.get(f"/orders/{answer['order_id']}", params={"after": answer["token"], "timeout": 30})
        assert read.status_code == 200, read.text
        marks[answer["order_id"]] = (sent, answered, time.time(), read.json()["placed_at"])

    return pair


class _SideReader:
    """A read_committed consumer of orders.commands and orders.events in a thread, from their end: per order key,
    the first command record's timestamp and the first event record's (timestamp, receipt), seconds on the wall
    clock. It fetches as the readers on the pair's path do (live_fetch_wait_max_ms), not every millisecond: see
    bench/latency.py."""

    def __init__(self, settings) -> None:
        import threading

        self.settings = settings
        self.commands: dict[str, float] = {}
        self.events: dict[str, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-side-reader", daemon=True)

    def __enter__(self) -> _SideReader:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the side reader was not assigned its partitions within 60 s")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        from confluent_kafka import Consumer

        from orderstream.kafka.clients import consumer_config, live_fetch_wait_ms
        from orderstream.topology import ORDERS_COMMANDS, ORDERS_EVENTS

        commands, events = self.settings.topic(ORDERS_COMMANDS), self.settings.topic(ORDERS_EVENTS)
        group = f"{self.settings.topic_prefix}bench.http.side"
        wait = live_fetch_wait_ms(self.settings)
        config = consumer_config(self.settings, group, **{"fetch.wait.max.ms": wait, "auto.offset.reset": "latest"})
        consumer = Consumer(config)
        consumer.subscribe([commands, events], on_assign=lambda *_: self._ready.set())
        try:
            while not self._stop.is_set():
                first = consumer.poll(0.05)  # returns at the first record (consume() would wait to fill a batch)
                if first is None:
                    continue
                received = time.time()
                for message in [first, *consumer.consume(num_messages=500, timeout=0)]:
                    if message.error() is not None or message.key() is None:
                        continue
                    key, stamp = message.key().decode(), message.timestamp()[1] / 1000
                    if message.topic() == commands:
                        self.commands.setdefault(key, stamp)
                    elif key not in self.events:
                        self.events[key] = (stamp, received)
        finally:
            consumer.close()


PAIR_HOPS = (
    "POST received -> command produced (HTTP, API handler)",
    "command -> decided (command delivery, order service poll, decide)",
    "decided -> committed (event produce, transaction commit, read_committed fetch)",
    "committed -> POST answered (the API's reply reader, HTTP answer)",
    "POST answered -> GET ?after answered (the view catching up, PositionWatch, query, HTTP)",
)


def _pair_hop_rows(marks: dict, side: _SideReader) -> list[dict]:
    """The pair's per-hop budget (see the module docstring): one row per hop, p50 as the value, p99 and its share of
    the slowest 1% of pairs' time in the notes."""
    from datetime import datetime

    hops: dict[str, list[float]] = {}
    for oid, (sent, answered, read, placed_at) in marks.items():
        if oid not in side.commands or oid not in side.events:
            continue
        decided = datetime.strptime(placed_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
        stamps = (sent, side.commands[oid], decided, side.events[oid][1], answered, read)
        hops[oid] = [(b - a) * 1000 for a, b in pairwise(stamps)]
    if not hops:
        return []
    slowest = sorted(hops, key=lambda oid: sum(hops[oid]))[-max(1, len(hops) // 100) :]
    notes = (
        f"{len(hops):,} pairs (one clock: POST sent, the command record's CreateTime, the order's placed_at, "
        "a read_committed side consumer's receipt of its event, POST answered, GET answered)"
    )
    return hop_budget_rows(hops, slowest, PAIR_HOPS, "HTTP pair budget", "pairs' time", notes)


async def _trivial_pair(client, _: int) -> None:
    for _ in range(2):
        assert (await client.get("/healthz")).status_code == 200


def _pct(values: list[float], q: float) -> float:
    """The q-quantile of times in seconds, in ms (NaN for none)."""
    return percentile(values, q) * 1000 if values else float("nan")


def bench_http_writes(
    env: BenchEnv, rate: float = 100, seconds: float = 20, warm_seconds: float = 5, broker_warm_seconds: float = 60
) -> list[dict]:
    settings = env.fresh()
    settings = settings.model_copy(update={"data_dir": env.workdir / f"http-{settings.topic_prefix.rstrip('.')}"})
    services = [_service(settings, name, env.workdir / f"http-{name}.log") for name in PATH_SERVICES]
    marks: dict[str, tuple[float, float, float, str]] = {}
    try:
        server, url = _serve(settings, env.workdir / "http-writes-serve.log", ["serve"])
        try:
            # the broker's transactional paths first: on a broker started minutes earlier the pairs' p99 was 168-308 ms
            # after 5-90 s of pairs as warm-up, and 244, 145, 111, 92, 89 ms in five runs in a row (2026-12-07)
            warm_up_broker(settings, per_second=BROKER_WARM_RATE, seconds=broker_warm_seconds)
            with _SideReader(settings) as side:
                asyncio.run(_paced_pairs(url, rate, warm_seconds, _place_then_read({})))  # services and views warm up
                times, failures, client_cpu = asyncio.run(_paced_pairs(url, rate, seconds, _place_then_read(marks)))
            trivial, _, _ = asyncio.run(_paced_pairs(url, rate, min(seconds, 5), _trivial_pair))
        finally:
            _stop(server)
    finally:
        for service in services:
            _stop(service)
    p99 = _pct(times, 0.99)
    return [
        *_pair_hop_rows(marks, side),
        {
            "benchmark": f"HTTP POST /orders then GET ?after=token, p99 ({rate:.0f} orders/s, SQLite)",
            "value": round(p99, 1),
            "unit": "ms",
            "goal": "<= 150",
            "met": failures == 0 and p99 <= 150,
            "notes": (
                f"{len(times):,} pairs over {seconds:.0f}s after {warm_seconds:.0f}s warm-up (and "
                f"{int(BROKER_WARM_RATE * broker_warm_seconds):,} orders at {BROKER_WARM_RATE}/s before it); order "
                "service, projections and serve as processes; p50 "
                f"{_pct(times, 0.5):.1f} ms; failures {failures}; two GET /healthz on the same schedule: p99 "
                f"{_pct(trivial, 0.99):.1f} ms (asyncio httpx client, one connection per pair in flight, fixed "
                f"schedule; the client used {client_cpu:.0%} of a core)"
            ),
        },
    ]


def bench_http(env: BenchEnv, orders: int, seconds: float, broker_warm_seconds: float = 60) -> list[dict]:
    rows = bench_http_reads(env, orders, seconds)
    return rows + bench_http_writes(env, seconds=max(10.0, seconds * 2), broker_warm_seconds=broker_warm_seconds)


if __name__ == "__main__":  # a quick look without the suite: python -m bench.http ORDERS
    from bench.env import bench_env

    with bench_env() as bench:
        for row in bench_http(bench, int(sys.argv[1]) if len(sys.argv) > 1 else 20_000, 5):
            print(json.dumps(row))
