"""The benchmarks, by name, each taking the environment and a scale factor (1.0 = the full counts)."""

from __future__ import annotations

from bench.cli_help import bench_help
from bench.console import bench_console
from bench.http import bench_http
from bench.latency import bench_latency_runs
from bench.memory import bench_memory
from bench.produce import bench_produce
from bench.query import bench_query
from bench.rebuild import bench_rebuild
from bench.registry import bench_registry
from bench.telemetry import bench_telemetry


def _events(scale: float) -> int:
    return max(20_000, int(1_000_000 * scale))


SUITE = {
    "help": lambda env, scale: bench_help(),
    "produce": lambda env, scale: bench_produce(env, records=max(20_000, int(300_000 * scale))),
    "rebuild": lambda env, scale: bench_rebuild(env, events=_events(scale)),
    "memory": lambda env, scale: bench_memory(env, events=_events(scale)),
    "latency": lambda env, scale: bench_latency_runs(
        env, rate=500, seconds=max(4.0, 20 * scale), warm_seconds=max(2.0, 60 * scale), runs=3
    ),
    "query": lambda env, scale: bench_query(env, orders=max(20_000, int(1_000_000 * scale))),
    "console": lambda env, scale: bench_console(env, orders=max(20_000, int(1_000_000 * scale))),
    "http": lambda env, scale: bench_http(
        env,
        orders=max(20_000, int(1_000_000 * scale)),
        seconds=max(5.0, 15 * scale),
        broker_warm_seconds=max(2.0, 60 * scale),
    ),
    "telemetry": bench_telemetry,  # metrics + tracing on vs off: produce, rebuild, end-to-end latency
    "registry": lambda env, scale: bench_registry(env, records=max(20_000, int(200_000 * scale))),
}
