"""The services a benchmark run needs: a real broker (started here unless one is given) and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orderstream.broker.distribution import KafkaDistribution
from orderstream.broker.java import find_java
from orderstream.config import Settings, load_settings


@dataclass
class BenchEnv:
    settings: Settings
    workdir: Path
    postgres_url: str | None
    java: str
    distribution: KafkaDistribution
    prefixes: list[str] = field(default_factory=list)  # the topic prefixes fresh() handed out

    def fresh(self, **overrides) -> Settings:
        """Settings with a new topic prefix (and any overrides), topics created."""
        from orderstream.kafka.topics import ensure_topics

        settings = self.settings.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}.", **overrides})
        self.prefixes.append(settings.topic_prefix)
        ensure_topics(settings)
        return settings

    def delete_topics(self) -> int:
        """Delete every topic under the prefixes fresh() handed out (a shared broker keeps no bench leftovers);
        the number deleted."""
        from confluent_kafka.admin import AdminClient

        from orderstream.kafka.clients import admin_config

        if not self.prefixes:
            return 0
        admin = AdminClient(admin_config(self.settings))
        names = [t for t in admin.list_topics(timeout=30).topics if t.startswith(tuple(self.prefixes))]
        for future in admin.delete_topics(names, operation_timeout=60).values() if names else ():
            future.result()
        return len(names)


@contextlib.contextmanager
def bench_env() -> Iterator[BenchEnv]:
    from tests.support.brokers import start_test_broker
    from tests.support.postgres import start_test_postgres

    with tempfile.TemporaryDirectory(prefix="orderstream-bench-") as tmp:
        workdir = Path(tmp)
        broker = None
        bootstrap = os.environ.get("ORDERSTREAM_BENCH_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = start_test_broker(workdir / "kafka", heap="1g")
            bootstrap = broker.spec.bootstrap
        pg = None
        try:
            try:
                pg = start_test_postgres(workdir / "pg")
            except Exception as exc:  # noqa: BLE001 - PostgreSQL rows are reported as skipped, with the reason
                print(f"PostgreSQL unavailable, its benchmarks are skipped: {exc}")
            settings = load_settings(bootstrap_servers=bootstrap, data_dir=workdir / "data", partitions=6)
            env = BenchEnv(
                settings,
                workdir,
                pg.url if pg else None,
                find_java(),
                KafkaDistribution(settings.kafka_version, settings.cache_dir).ensure(),
            )
            try:
                yield env
            finally:
                if broker is None:  # a broker we were given: leave it as we found it
                    print(f"deleted the bench's {env.delete_topics()} topics from {bootstrap}")
        finally:
            if pg:
                pg.stop()
            if broker:
                broker.stop()
