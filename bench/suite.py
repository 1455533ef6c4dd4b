"""The benchmarks, by name, each taking the environment and a scale factor (1.0 = the full counts)."""

from __future__ import annotations

from bench.cli_help import bench_help
from bench.produce import bench_produce

SUITE = {
    "help": lambda env, scale: bench_help(),
    "produce": lambda env, scale: bench_produce(env, records=max(5_000, int(200_000 * scale))),
}
