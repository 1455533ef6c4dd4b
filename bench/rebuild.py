"""Rebuild throughput: the order-view projector over a pre-filled orders.events, into SQLite and into PostgreSQL,
and `replay projection` (both use the view's bulk fold and load a fresh generation before its secondary indexes: the
projector because it starts far behind on a fresh view),
beside a Python consumer that only decodes (same client, same batch size, no database) and Kafka's own Java
ConsumerPerformance on the same topic. Each Python run is a fresh process, consumer group and database; the rate is
measured from the first applied batch to the last offset stored (the group join, ~0.1-3 s, is left out and shown).
One process uses about one core (the GIL), so each database also gets a run of two projector processes in one group
(they share the partitions) and `replay projection --processes 2`, beside the single-process ones."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.env import BenchEnv
from bench.fill import Filled, fill

_RUNS: dict[tuple, dict] = {}  # (mode, backend, events) -> worker result, shared with the memory benchmark


def run_worker(
    env: BenchEnv, filled: Filled, mode: str, url: str | None = None, batch_size: int = 500, processes: int = 1
) -> dict:
    """Run bench.rebuild_worker in `processes` child processes (one consumer group: they share the partitions, as
    `orderstream run projections` started that many times does); the result of the one that applied the first
    batch (its steady window covers everyone's), with the peak RSS of the largest child (wait4)."""
    args = {
        "mode": mode,
        "bootstrap": filled.settings.effective_bootstrap,
        "topic_prefix": filled.settings.topic_prefix,
        "url": url,
        "group": f"bench-{mode}-{uuid.uuid4().hex[:8]}",
        "batch_size": batch_size,
        "highs": {str(p): o for p, o in filled.highs.items()},
        "data_dir": str(env.workdir / "data"),
    }
    results = []
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(processes)]
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.rebuild_worker", json.dumps(args)],
                stdout=out,
                cwd=Path(__file__).parent.parent,
            )
            for out in outs
        ]
        profile_dir = os.environ.get("ORDERSTREAM_BENCH_PROFILE_DIR")  # py-spy the worker (raw folded stacks)
        spy = (
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "-f",
                    "raw",
                    "-r",
                    "250",
                    "-o",
                    f"{profile_dir}/rebuild-{mode}-{make_url_backend(url)}-{batch_size}.txt",
                    "-p",
                    str(children[0].pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if profile_dir
            else None
        )
        for child, out in zip(children, outs, strict=True):
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read()
            if child.returncode != 0:
                raise RuntimeError(f"rebuild worker ({mode}) exited with {child.returncode}: {text[-300:]}")
            result = json.loads(text.strip().splitlines()[-1])
            # the child's own high-water mark; wait4's ru_maxrss would include the RSS this process had at fork
            result["child_maxrss_kb"] = result["maxrss_kb"] if result.get("maxrss_kb") else usage.ru_maxrss
            results.append(result)
        if spy is not None:
            spy.wait(30)
    result = max(results, key=lambda r: r["steady_seconds"])
    result["child_maxrss_kb"] = max(r["child_maxrss_kb"] for r in results)
    result["seconds"] = max(r["seconds"] for r in results)
    result["rate"] = result["steady_events"] / result["steady_seconds"]
    return result


def make_url_backend(url: str | None) -> str:
    return "none" if url is None else url.split(":", 1)[0].split("+", 1)[0]


def sqlite_url(env: BenchEnv) -> str:
    return f"sqlite:///{env.workdir / 'views' / uuid.uuid4().hex[:8]}/order_view.db"


def postgres_url(env: BenchEnv) -> str:
    import sqlalchemy as sa

    name = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(env.postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return env.postgres_url.rsplit("/", 1)[0] + f"/{name}"


def java_consumer(env: BenchEnv, filled: Filled) -> tuple[float | None, str]:
    """Kafka's ConsumerPerformance (read_committed) over the same topic: fetch-phase messages/s, or None and why."""
    from orderstream.topology import ORDERS_EVENTS

    props = env.workdir / "consumer-perf.properties"
    props.write_text("isolation.level=read_committed\nauto.offset.reset=earliest\n")
    base = [
        env.java,
        "-Xmx512m",
        "-cp",
        env.distribution.classpath,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        filled.settings.effective_bootstrap,
        "--topic",
        filled.settings.topic(ORDERS_EVENTS),
        "--group",
        f"bench-java-{uuid.uuid4().hex[:8]}",
        "--timeout",
        "60000",
    ]
    out = None
    for count_flag, config_flag in (("--num-records", "--command-config"), ("--messages", "--consumer.config")):
        out = subprocess.run(
            [*base, count_flag, str(filled.events), config_flag, str(props)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode == 0:
            break
    assert out is not None
    lines = [line for line in out.stdout.splitlines() if re.match(r"^\d{4}-\d\d-\d\d", line.strip())]
    if out.returncode != 0 or not lines:
        return None, f"failed: {(out.stderr or out.stdout).strip()[-200:]}"
    header = [h.strip() for h in out.stdout.splitlines()[0].split(",")] if "," in out.stdout.splitlines()[0] else []
    fields = [f.strip() for f in lines[-1].split(",")]
    values = dict(zip(header, fields, strict=False))
    rate = float(values.get("fetch.nMsg.sec") or fields[9])
    total = float(values.get("nMsg.sec") or fields[5])
    return rate, f"{filled.events} records; fetch phase (join excluded), {total:,.0f}/s with the join"


def run_replay(env: BenchEnv, filled: Filled, url: str, processes: int = 1) -> dict:
    """`orderstream replay projection order-view --from-beginning --processes N --json` as users run it (its own
    process, the database named by ORDERSTREAM_DATABASE_URL); its summary, with rate = events applied / its own
    seconds (from the start of the build to the swap, both included: the workers' start too)."""
    data_dir = env.workdir / f"replay-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "orderstream.cli.main",
        "-b",
        filled.settings.effective_bootstrap,
        "--topic-prefix",
        filled.settings.topic_prefix,
        "--data-dir",
        str(data_dir),
        "replay",
        "projection",
        "order-view",
        "--from-beginning",
        "--processes",
        str(processes),
        "--json",
    ]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "ORDERSTREAM_DATABASE_URL": url},
    )
    if out.returncode != 0:
        raise RuntimeError(f"replay exited with {out.returncode}: {(out.stderr or out.stdout)[-300:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    summary["rate"] = summary["events_applied"] / summary["seconds"]
    return summary


def bench_rebuild(env: BenchEnv, events: int, batch_size: int = 5000, tuned_batch_size: int | None = 500) -> list[dict]:
    """Rows for the default projector batch (settings.projection_batch_size = 5000) and, as a data point, a small
    one."""
    filled = fill(env, events)
    rows = []
    decode = run_worker(env, filled, "decode", batch_size=batch_size)
    _RUNS[("decode", None, events)] = decode
    base_rate = decode["rate"]

    anchor = f"anchor: decode-only {base_rate:,.0f}/s, this run"

    def row(label: str, result: dict, goal: float, size: int, processes: int = 1) -> dict:
        ratio = result["rate"] / base_rate
        setting = "default projection_batch_size" if size == batch_size else "ORDERSTREAM_PROJECTION_BATCH_SIZE"
        how = "" if processes == 1 else f"{processes} projector processes in one group, "
        return {
            "benchmark": f"rebuild order-view into {label}, {how}{setting}={size}",
            "value": round(result["rate"]),
            "unit": "events/s",
            "goal": f">= {goal}x decode-only (issue 22)",
            "met": ratio >= goal,
            "notes": f"{ratio:.2f}x decode-only ({anchor}); {events:,} events ({filled.orders:,} orders); "
            "a projector starting far behind on a fresh view (full batches: the bulk fold, in its reading "
            "thread, into tables whose secondary indexes it builds with the batch that reaches the backlog's end); "
            f"{result['seconds']:.1f}s wall incl. group join; peak RSS "
            f"{result['child_maxrss_kb'] / 1024:.0f} MiB" + (" (largest process)" if processes > 1 else ""),
        }

    sizes = [batch_size] + ([tuned_batch_size] if tuned_batch_size else [])
    # issue 22's goals for one process, as a share of the decode-only consumer of the same run
    backends = [("SQLite", sqlite_url, 0.45)] + ([("PostgreSQL", postgres_url, 0.35)] if env.postgres_url else [])
    for label, new_database, goal in backends:
        for size in sizes:
            result = run_worker(env, filled, "project", new_database(env), size)
            if (label, size) == ("SQLite", batch_size):
                _RUNS[("project", "sqlite", events)] = result
            rows.append(row(label, result, goal, size))
        rows.append(
            row(
                label,
                run_worker(env, filled, "project", new_database(env), batch_size, processes=2),
                goal,
                batch_size,
                processes=2,
            )
        )
    if not env.postgres_url:
        rows.append(
            {
                "benchmark": "rebuild order-view into PostgreSQL",
                "value": None,
                "unit": "events/s",
                "goal": ">= 0.35x decode-only (issue 22)",
                "met": None,
                "notes": "skipped: PostgreSQL unavailable",
            }
        )
    for label, new_database, goal in backends:
        for processes in (1, 2):
            replay = run_replay(env, filled, new_database(env), processes)
            option = "" if processes == 1 else f" --processes {processes}"
            ratio = replay["rate"] / base_rate
            rows.append(
                {
                    "benchmark": f"rebuild order-view into {label} with `orderstream replay projection "
                    f"order-view --from-beginning{option}`",
                    "value": round(replay["rate"]),
                    "unit": "events/s",
                    "goal": f">= {goal}x decode-only (issue 22)",
                    "met": ratio >= goal,
                    "notes": f"{ratio:.2f}x decode-only ({anchor}); {replay['events_applied']:,} events in "
                    f"{replay['seconds']:.1f}s as the command reports them (bulk fold into a generation without "
                    "its secondary indexes, indexing, catch-up and swap; a fresh database, so no live generation to "
                    "copy)" + ("" if processes == 1 else "; workers' start included"),
                }
            )
    rows.append(
        {
            "benchmark": "consume + decode only (Python, no database)",
            "value": round(base_rate),
            "unit": "events/s",
            "goal": "reference",
            "met": None,
            "notes": f"same client settings, batch {batch_size}; {decode['seconds']:.1f}s wall incl. group join; "
            f"peak RSS {decode['child_maxrss_kb'] / 1024:.0f} MiB",
        }
    )
    java_rate, note = java_consumer(env, filled)
    rows.append(
        {
            "benchmark": "consume, Kafka ConsumerPerformance (Java), same topic",
            "value": round(java_rate) if java_rate else None,
            "unit": "events/s",
            "goal": "reference",
            "met": None,
            "notes": note,
        }
    )
    return rows
