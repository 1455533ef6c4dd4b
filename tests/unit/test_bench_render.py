"""The benchmark suite's report renders: a smoke test that keeps bench/ importable from the test suite."""

from __future__ import annotations

from bench.__main__ import render_markdown

MACHINE = {
    "date": "2026-01-01T00:00:00+00:00",
    "cpu": "Test CPU",
    "cores": 2,
    "memory_gib": 4.0,
    "os": "Linux 6",
    "python": "3.11.7",
    "java": 'openjdk version "17"',
}


def test_render_markdown_of_fake_rows() -> None:
    rows = [
        {"benchmark": "produce", "value": 61234, "unit": "events/s", "goal": ">= 50,000", "met": True, "notes": "n"},
        {"benchmark": "query p99", "value": 0.75, "unit": "ms", "goal": "<= 2", "met": False, "notes": ""},
        {"benchmark": "broken", "value": None, "unit": "", "goal": "", "met": None, "notes": "failed: boom"},
    ]

    text = render_markdown(MACHINE, rows, quick=True)

    lines = text.splitlines()
    assert lines[0].startswith("Measured 2026-01-01T00:00:00+00:00 on Test CPU, 2 cores") and "QUICK" in lines[0]
    assert lines[2] == "| benchmark | value | unit | goal | met | notes |"
    assert "| produce | 61,234 | events/s | >= 50,000 | yes | n |" in lines
    assert "| query p99 | 0.75 | ms | <= 2 | no |  |" in lines
    assert "| broken |  |  |  |  | failed: boom |" in lines


# bench/ modules that support the benchmarks rather than being one
BENCH_HELPERS = {"__init__", "__main__", "suite", "env", "fill", "machine", "rebuild_worker", "otlp_sink"}


def test_every_benchmark_is_in_the_suite() -> None:
    """Every benchmark module of bench/ is run by `make bench` (a benchmark nobody runs measures nothing), and the
    suite's original names stay."""
    from pathlib import Path

    import bench.suite
    from bench.suite import SUITE

    modules = {path.stem for path in Path(bench.suite.__file__).parent.glob("*.py")} - BENCH_HELPERS
    imported = {
        value.__module__.removeprefix("bench.")
        for value in vars(bench.suite).values()
        if callable(value) and getattr(value, "__module__", "").startswith("bench.")
    }
    assert modules and modules - imported == set()
    assert {"help", "produce", "rebuild", "memory", "latency", "query"} <= set(SUITE)
