"""Shared fixtures: a real Kafka broker and a real PostgreSQL cluster, started once per test session.

kafka: ORDERSTREAM_TEST_BOOTSTRAP_SERVERS when set; else the local broker (Maven-fetched Apache Kafka jars) on free
ports in a temp dir; else testcontainers' Kafka when a Docker engine answers. With ORDERSTREAM_REQUIRE_BROKER=1 a
broker that cannot be had FAILS the test instead of skipping it. postgres works the same way with initdb/pg_ctl and
ORDERSTREAM_REQUIRE_POSTGRES=1.

Also here: `db_url` (one contract suite on SQLite and PostgreSQL), `codec`, and an autouse guard that keeps every test
off the default broker port and data directory. Shared helpers (not fixtures) live in tests/support; no test module
imports another.

ORDERSTREAM_REQUIRE_POSTGRES=1. schema_registry: a real Apicurio Registry (KafkaSQL on the session broker), every
package schema registered; ORDERSTREAM_REQUIRE_REGISTRY=1 makes one that cannot be had fail the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderstream.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _no_default_broker_port_or_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test reaches the default broker port (9092) or writes to the default data directory (./.orderstream): a
    `make demo` broker still running on 9092, or a developer's data, would change what a test sees. A test (or a
    process it starts) that names neither gets a port nothing listens on and a data directory of its own; settings
    and command-line options a test passes win over these, as always."""
    from orderstream.broker.daemon import free_port

    monkeypatch.setenv("ORDERSTREAM_BROKER_PORT", str(free_port()))
    monkeypatch.setenv("ORDERSTREAM_DATA_DIR", str(tmp_path_factory.mktemp("default-data-dir")))


def _unavailable(what: str, variable: str, reason: str) -> None:
    message = f"{what} unavailable: {reason}"
    if os.environ.get(variable) == "1":
        pytest.fail(f"{message} ({variable}=1, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a real Apache Kafka broker for this test session."""
    from tests.support.registry import EARLY

    external = os.environ.get("ORDERSTREAM_TEST_BOOTSTRAP_SERVERS")
    if external:
        EARLY.launch(tmp_path_factory.mktemp("registry"), external)  # only when a collected test needs it
        yield external
        return
    from tests.support.brokers import start_test_broker

    try:
        broker = start_test_broker(tmp_path_factory.mktemp("kafka"))
    except Exception as exc:  # noqa: BLE001 - any failure to start means "no broker", reported below
        _unavailable("Kafka broker", "ORDERSTREAM_REQUIRE_BROKER", str(exc))
        return
    EARLY.launch(tmp_path_factory.mktemp("registry"), broker.spec.bootstrap)
    try:
        yield broker.spec.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: the session broker, its own topic prefix (so tests never share topics) and data dir.

    Topics are NOT created here: call orderstream.kafka.topics.ensure_topics(settings) (or use `topics`). Whatever
    topics the test made under its prefix are deleted afterwards, so the session broker stays small.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield load_settings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, data_dir=tmp_path / "data", partitions=3
    )
    _delete_topics(kafka_bootstrap, prefix)


def _delete_topics(bootstrap: str, prefix: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, request_timeout=30).values():
            future.result()


@pytest.fixture
def topics(settings: Settings) -> Settings:
    """`settings`, with every pipeline topic created on the broker."""
    from orderstream.kafka.topics import ensure_topics

    ensure_topics(settings)
    return settings


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLAlchemy URL of a throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir)."""
    external = os.environ.get("ORDERSTREAM_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    from tests.support.postgres import start_test_postgres

    try:
        cluster = start_test_postgres(tmp_path_factory.mktemp("pg"))
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", "ORDERSTREAM_REQUIRE_POSTGRES", str(exc))
        return
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def pg_database(postgres_url: str) -> str:
    """A fresh, empty database in the session's PostgreSQL cluster; its SQLAlchemy URL."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A projection URL template for Settings.database_url, so one contract suite runs on SQLite and on PostgreSQL.
    SQLite gets one file per projection ({projection} is replaced by the projection name), PostgreSQL one fresh
    database shared by the projections (their tables and bookkeeping rows are named per projection, so they coexist).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'views'}/{{projection}}.db"
    return request.getfixturevalue("pg_database")


@pytest.fixture(scope="module")
def codec():
    """A codec with the production catalog, mapper and upcasters, fresh for each test module."""
    from orderstream.schemas.codec import Codec

    return Codec()


@pytest.fixture(scope="session")
def schema_registry(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    """A running Apicurio Registry for this test session (a LocalRegistry; .spec.url is its Confluent-compatible API),
    with every schema of the package registered. Tests that stop it must start it again."""
    from tests.support.registry import EARLY, register_package_schemas

    try:
        registry = EARLY.ready(tmp_path_factory.mktemp("registry"), kafka_bootstrap)  # launched early when it could be
        register_package_schemas(registry.spec.url)
    except Exception as exc:  # noqa: BLE001 - any failure to start means "no registry", reported below
        EARLY.stop()
        _unavailable("schema registry", "ORDERSTREAM_REQUIRE_REGISTRY", str(exc))
        return
    try:
        yield registry
    finally:
        registry.stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Whether this session needs the schema registry: then kafka_bootstrap launches it in the background early."""
    from tests.support.registry import EARLY

    EARLY.wanted = any("schema_registry" in getattr(item, "fixturenames", ()) for item in session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A registry launched early but never used (the session stopped first) does not outlive the session."""
    from tests.support.registry import EARLY

    EARLY.stop()


@pytest.fixture
def registry_settings(settings: Settings, schema_registry) -> Settings:
    """`settings` in registry mode: writers produce the Confluent wire format through the session registry."""
    from orderstream.config import with_overrides

    return with_overrides(settings, schema_registry_url=schema_registry.spec.url)
