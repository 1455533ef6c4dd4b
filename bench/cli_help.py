"""`orderstream --help` wall time: the CLI imports heavy libraries only inside commands."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def bench_help(runs: int = 10) -> list[dict]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "orderstream.cli.main", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - began)
    median = statistics.median(times)
    return [
        {
            "benchmark": "orderstream --help wall time (median of 10)",
            "value": round(median, 3),
            "unit": "s",
            "goal": "<= 0.3",
            "met": median <= 0.3,
            "notes": f"min {min(times):.3f}s, max {max(times):.3f}s",
        }
    ]
