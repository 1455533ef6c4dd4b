"""Produce throughput: orderstream's Python producer (Avro, idempotent, acks=all) beside Kafka's ProducerPerformance."""

from __future__ import annotations

import re
import subprocess

from bench.env import BenchEnv


def bench_produce(env: BenchEnv, records: int) -> list[dict]:
    from orderstream.producers.generator import send_range
    from orderstream.producers.load_plan import LoadProfile, plan_commands
    from orderstream.schemas.codec import Codec

    settings = env.fresh()
    profile = LoadProfile(orders=records, seed=1, cancel_ratio=0.0)
    result = send_range(settings, profile, 0, records)
    python_rate = result.records / result.seconds

    from datetime import UTC, datetime

    codec = Codec()
    sample = [codec.encode(c) for c in plan_commands(profile, lambda: datetime.now(UTC), 0, 1000)]
    record_size = round(sum(len(v) for v in sample) / len(sample))

    topic = settings.topic("orders.events")
    out = subprocess.run(
        [env.java, "-Xmx512m", "-cp", env.distribution.classpath, "org.apache.kafka.tools.ProducerPerformance",
         "--topic", topic, "--num-records", str(records), "--record-size", str(record_size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={settings.effective_bootstrap}", "acks=all",
         "enable.idempotence=true", "compression.type=lz4", "linger.ms=20", "batch.size=131072"],
        capture_output=True, text=True, timeout=600,
    )
    match = re.search(r"([\d.]+) records/sec", out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "")
    java_rate = float(match.group(1)) if match else None
    rows = [
        {"benchmark": "produce, Python (orderstream generate, Avro + CloudEvents headers)", "value": round(python_rate),
         "unit": "events/s", "goal": ">= 50000", "met": python_rate >= 50_000,
         "notes": f"{records} records, ~{record_size} B each, idempotent, acks=all, lz4"},
        {"benchmark": "produce, Kafka ProducerPerformance (Java), same broker and record size",
         "value": round(java_rate) if java_rate else None, "unit": "events/s", "goal": "reference", "met": None,
         "notes": "acks=all, idempotent, lz4" if java_rate else f"failed: {out.stderr.strip()[-200:]}"},
    ]
    return rows
