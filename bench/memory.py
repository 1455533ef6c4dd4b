"""Peak memory (RSS) of an order-view rebuild into SQLite over one million events, measured on the rebuild's own
process: its VmHWM, read by the child itself (ru_maxrss would include the parent's size, inherited at fork). When the
rebuild benchmark already ran that exact rebuild in this run, its measurement is reused rather than repeating it.

Flat in the number of events (issue 22): a rebuild of a quarter of the events is measured too, and the full one may
peak at most FLAT_MARGIN higher (a rebuild holds a batch and its open orders' state, not the log)."""

from __future__ import annotations

from bench.env import BenchEnv
from bench.fill import fill
from bench.rebuild import _RUNS, run_worker, sqlite_url

FLAT_MARGIN = 1.15


def bench_memory(env: BenchEnv, events: int) -> list[dict]:
    result = _RUNS.get(("project", "sqlite", events))
    reused = result is not None
    if result is None:
        filled = fill(env, events)
        result = run_worker(env, filled, "project", sqlite_url(env), env.settings.projection_batch_size)
    mib = result["child_maxrss_kb"] / 1024
    decode = _RUNS.get(("decode", None, events))
    baseline = f"; the decode-only consumer peaked at {decode['child_maxrss_kb'] / 1024:.0f} MiB" if decode else ""
    return [
        {
            "benchmark": f"peak RSS of a rebuild of {events:,} events (order-view, SQLite)",
            "value": round(mib),
            "unit": "MiB",
            "goal": "<= 300",
            "met": mib <= 300,
            "notes": f"one process, VmHWM{' (the rebuild run above)' if reused else ''}{baseline}",
        },
        _flat(env, events, mib),
    ]


def _flat(env: BenchEnv, events: int, full_mib: float) -> dict:
    quarter = max(5_000, events // 4)
    result = run_worker(env, fill(env, quarter), "project", sqlite_url(env), env.settings.projection_batch_size)
    small_mib = result["child_maxrss_kb"] / 1024
    ratio = full_mib / small_mib
    return {
        "benchmark": f"peak RSS of a rebuild of {events:,} events over one of {quarter:,} (order-view, SQLite)",
        "value": round(ratio, 2),
        "unit": "ratio",
        "goal": f"<= {FLAT_MARGIN} (flat)",
        "met": ratio <= FLAT_MARGIN,
        "notes": f"{full_mib:.0f} MiB vs {small_mib:.0f} MiB; 4x the events",
    }
