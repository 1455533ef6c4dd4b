"""Settings precedence (CLI > env > TOML > defaults), secrets, and the errors a bad value gives."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orderstream.config import ConfigError, load_settings
from orderstream.kafka.clients import consumer_config, live_fetch_wait_ms, producer_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    for name in list(__import__("os").environ):
        if name.startswith("ORDERSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_use_the_local_broker():
    settings = load_settings()
    assert settings.uses_local_broker
    assert settings.effective_bootstrap == "127.0.0.1:9092"
    assert settings.partitions == 6 and settings.replication_factor == 1


def test_toml_then_env_then_cli(tmp_path, monkeypatch):
    toml = tmp_path / "custom.toml"
    toml.write_text('partitions = 12\nbroker_port = 19999\ntopic_prefix = "toml."\n')
    settings = load_settings(toml)
    assert (settings.partitions, settings.broker_port, settings.topic_prefix) == (12, 19999, "toml.")

    monkeypatch.setenv("ORDERSTREAM_PARTITIONS", "8")
    settings = load_settings(toml)
    assert (settings.partitions, settings.broker_port) == (8, 19999)

    settings = load_settings(toml, partitions=4, topic_prefix=None)
    assert (settings.partitions, settings.topic_prefix) == (4, "toml.")


def test_default_toml_file_in_working_directory_is_read(tmp_path):
    (tmp_path / "orderstream.toml").write_text('bootstrap_servers = "10.0.0.1:9092"\n')
    assert load_settings().bootstrap_servers == "10.0.0.1:9092"


def test_settings_are_frozen():
    settings = load_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.partitions = 3  # type: ignore[misc]


def test_secret_never_appears_in_repr_or_str(monkeypatch):
    monkeypatch.setenv("ORDERSTREAM_SASL_PASSWORD", "hunter2-secret")
    settings = load_settings(sasl_mechanism="SCRAM-SHA-256", sasl_username="app")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings)
    assert producer_config(settings)["sasl.password"] == "hunter2-secret"


@pytest.mark.parametrize("bad", ["nope", "host:", ":9092", "host:99999", "host:abc"])
def test_bad_bootstrap_address_is_one_clear_error(bad):
    with pytest.raises(ConfigError, match=r"bootstrap_servers.*host:port"):
        load_settings(bootstrap_servers=bad)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_a_missing_config_file_named_by_the_environment_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERSTREAM_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml \(ORDERSTREAM_CONFIG\) does not exist"):
        load_settings()


def test_unknown_setting_in_toml_is_an_error(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text("partitons = 3\n")
    with pytest.raises(ConfigError, match="partitons"):
        load_settings(toml)


def test_client_defaults():
    settings = load_settings()
    producer = producer_config(settings, transactional_id="tx-1")
    assert producer["enable.idempotence"] is True and producer["acks"] == "all"
    assert producer["partitioner"] == "murmur2_random" and producer["compression.type"] == "lz4"
    assert producer["transactional.id"] == "tx-1"
    consumer = consumer_config(settings, "group-a")
    assert consumer["isolation.level"] == "read_committed"
    assert consumer["enable.auto.commit"] is False and consumer["enable.auto.offset.store"] is False


def test_readers_someone_waits_on_fetch_with_the_shorter_wait():
    from orderstream.runtime.projector import Projector
    from orderstream.views.registry import spec_of

    settings = load_settings()
    assert consumer_config(settings, "group-a")["fetch.wait.max.ms"] == settings.fetch_wait_max_ms == 50
    assert live_fetch_wait_ms(settings) == settings.live_fetch_wait_max_ms == 10
    assert Projector(settings, spec_of("order-view"))._consumer_config()["fetch.wait.max.ms"] == 10
    assert live_fetch_wait_ms(load_settings(fetch_wait_max_ms=2)) == 2  # the general setting still caps it
    assert live_fetch_wait_ms(load_settings(live_fetch_wait_max_ms=50)) == 50


def test_topic_prefix_and_database_urls(tmp_path):
    settings = load_settings(topic_prefix="dev.", data_dir=tmp_path)
    assert settings.topic("orders.events") == "dev.orders.events"
    assert settings.database_url_for("order-view") == f"sqlite:///{tmp_path.resolve()}/views/dev.order-view.db"
    pg = load_settings(database_url="postgresql+psycopg://u@127.0.0.1/db_{projection}")
    assert pg.database_url_for("sales-view") == "postgresql+psycopg://u@127.0.0.1/db_sales_view"
