"""The one typed settings object, built at the edge and handed down explicitly.

Precedence, highest first: CLI options (passed as overrides), ORDERSTREAM_* environment variables, a TOML file
(--config, ORDERSTREAM_CONFIG, or ./orderstream.toml when present), then the defaults below.
Secrets are SecretStr: their repr is masked, so they never reach a log line.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

DEFAULT_CONFIG_FILE = "orderstream.toml"


class Settings(BaseSettings):
    """Every knob of orderstream. Frozen: build a new one (with_overrides(settings, ...)) to change it."""

    model_config = SettingsConfigDict(env_prefix="ORDERSTREAM_", frozen=True, extra="forbid")

    # Kafka connection. When bootstrap_servers is unset, the local broker on broker_port is used.
    bootstrap_servers: str | None = Field(None, description="host:port[,host:port]; unset = the local broker")
    client_id: str = "orderstream"
    security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    sasl_mechanism: str | None = Field(None, description="SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    service_credentials: Path | None = Field(
        None,
        description="TOML file of per-service SASL credentials ([order] username, password; ...) written by "
        "`orderstream security init`: `run SERVICE` then authenticates as that service's own principal",
    )

    # Topics.
    topic_prefix: str = Field("", description="prepended to every topic name (isolates tests and environments)")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)

    # Where local state lives: broker data, projection databases, processor caches.
    data_dir: Path = Path(".orderstream")
    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "orderstream",
        description="downloaded Kafka jars",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL for the projections; {projection} is replaced by the projection name. "
        "Unset = one SQLite file per projection in data_dir/views/ (named with the topic prefix)",
    )

    # The local broker (orderstream broker start).
    kafka_version: str = "4.1.1"
    broker_port: int = Field(9092, ge=1, le=65535)
    controller_port: int = Field(9093, ge=1, le=65535)
    broker_heap: str = Field("512m", pattern=r"^\d+[kmgKMG]$")
    java_home: Path | None = None

    # Schema registry mode (a Confluent-compatible API, e.g. Apicurio's /apis/ccompat/v7). Unset = single-object
    # encoding, no registry. Set: writers produce the Confluent wire format (00, 4-byte schema id, Avro body).
    schema_registry_url: str | None = Field(
        None, description="the registry's Confluent-compatible API, e.g. http://127.0.0.1:8081/apis/ccompat/v7"
    )
    schema_registry_username: str | None = Field(None, description="basic authentication user (with the password)")
    schema_registry_password: SecretStr | None = None
    schema_registry_token: SecretStr | None = Field(None, description="a bearer token (instead of basic credentials)")
    schema_registry_auto_register: bool = Field(
        False, description="let writers register missing schemas (off: `orderstream schemas register` does it)"
    )
    schema_registry_timeout_s: float = Field(30.0, gt=0, description="how long one registry request may take")

    # The local schema registry (orderstream registry start): Apicurio Registry, KafkaSQL storage on the broker.
    apicurio_version: str = "3.3.3"
    registry_port: int = Field(8081, ge=1, le=65535)
    registry_management_port: int = Field(9001, ge=1, le=65535)
    registry_heap: str = Field("256m", pattern=r"^\d+[kmgKMG]$")

    # Payment rules (minor units of the order's currency; limits apply per currency, there is no FX conversion).
    payment_order_limit_minor: int = Field(
        500_000, ge=0, description="the largest order total the payment service authorizes"
    )
    payment_credit_limit_minor: int = Field(
        2_000_000, ge=0, description="the most a customer may have authorized and not yet released across open orders"
    )

    # Runtimes.
    batch_size: int = Field(500, ge=1, le=100_000, description="records per processor transaction, at most")
    projection_batch_size: int = Field(
        5_000,
        ge=1,
        le=100_000,
        description="records per projector SQL transaction, at most (a view catching up "
        "writes fewer, bigger transactions; a live one takes whatever arrived, so latency does not grow)",
    )
    poll_timeout_s: float = Field(0.5, gt=0)
    wait_timeout_s: float = Field(30.0, gt=0, description="how long --wait and --after wait for an answer")
    log_level: str = "INFO"
    stop_timeout_s: float = Field(
        30.0,
        gt=0,
        description="how long a `run` process may take to stop cleanly after SIGTERM or Ctrl-C; past it, it prints "
        "where it is stuck and exits (the positions commit with the work, so nothing is lost)",
    )
    offset_mirror_interval_s: float = Field(
        1.0,
        ge=0,
        description="how often a projector commits its positions (kept in its own database) to its consumer group, "
        "a mirror for Kafka's lag tools; 0: after every batch",
    )
    session_timeout_ms: int = Field(
        10_000, ge=1_000, description="consumer session timeout: how fast a dead member is noticed"
    )
    max_poll_interval_ms: int = Field(300_000, ge=1_000, description="longest a consumer may go between polls")
    fetch_wait_max_ms: int = Field(
        50,
        ge=1,
        le=10_000,
        description="longest the broker holds a consumer's fetch when it has nothing new for it. "
        "Kept short because a read_committed fetch parked just before a transaction commits can wait it out whole "
        "(the default 500 ms put a 300-700 ms tail on end-to-end latency at 500 orders/s; 50 ms removed it)",
    )
    live_fetch_wait_max_ms: int = Field(
        10,
        ge=1,
        le=10_000,
        description="fetch_wait_max_ms for the readers someone waits on: the projectors (read-your-writes) and the "
        "reply readers (POST /orders, --wait); the lower of the two applies. The broker does not always wake a "
        "read_committed fetch parked on a partition when a transaction commits there, so at a light load the "
        "commit can be seen only at the next record appended or when the fetch expires (a fetch.wait.max.ms=50 reader "
        "saw the same committed records 7-31 ms later at p99 than a 1 ms one, at 100 orders/s; p50 the same). Each "
        "idle reader costs the broker about 1.5-2% of a core at 10 ms (0.5-0.8% at 50); a reader with records to "
        "fetch (a catch-up, a rebuild) never waits, so throughput is unchanged",
    )

    # Observability (docs/OBSERVABILITY.md): Prometheus metrics and OpenTelemetry traces.
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="serve Prometheus /metrics on this port from every `run` process (under `run all`, one target "
        "for the whole process tree); unset = no metrics server",
    )
    metrics_host: str = Field("127.0.0.1", description="the address the /metrics server binds")
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces; unset = tracing off (no cost)",
    )
    trace_sampling_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="share of new traces recorded (a child follows its parent's decision)"
    )

    # The HTTP API (orderstream serve; run all starts it too).
    api_host: str = Field("127.0.0.1", description="address `serve` binds; a non-loopback one needs api_token")
    api_port: int = Field(8080, ge=1, le=65535, description="port of the HTTP API (serve, run all)")
    api_token: SecretStr | None = Field(
        None, description="when set, every HTTP request needs `Authorization: Bearer <token>` (never logged)"
    )
    api_cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser (CORS); empty = CORS off"
    )
    api_max_body_bytes: int = Field(65_536, ge=1_024, le=10_485_760, description="largest HTTP request body")
    ready_max_lag: int = Field(
        1_000, ge=0, description="GET /readyz answers 503 when a view the API serves is more events behind than this"
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for address in value.split(","):
            host, sep, port = address.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"bootstrap server {address.strip()!r} is not host:port (e.g. 127.0.0.1:9092)")
        return value

    @property
    def local_bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def uses_local_broker(self) -> bool:
        return self.bootstrap_servers is None

    @property
    def effective_bootstrap(self) -> str:
        return self.bootstrap_servers or self.local_bootstrap

    @property
    def uses_schema_registry(self) -> bool:
        return bool(self.schema_registry_url)

    @property
    def local_registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def database_url_for(self, projection: str) -> str:
        if self.database_url:
            return self.database_url.replace("{projection}", projection.replace("-", "_"))
        # the topic prefix is part of the file name: views built from different topics never share a database
        return f"sqlite:///{(self.data_dir / 'views' / f'{self.topic_prefix}{projection}.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("ORDERSTREAM_CONFIG") or DEFAULT_CONFIG_FILE
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if Path(config_file).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why.

    setting/reason: for an invalid value, its setting's name and what is wrong with it (so a command can name the
    option it came from); None for a file that cannot be read at all.
    """

    def __init__(self, message: str, setting: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.setting, self.reason = setting, reason


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: overrides (CLI options; None values are ignored) > env > TOML file > defaults."""
    overrides = {key: value for key, value in overrides.items() if value is not None}
    previous = os.environ.get("ORDERSTREAM_CONFIG")
    if config_file is not None:
        if not Path(config_file).is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        os.environ["ORDERSTREAM_CONFIG"] = str(config_file)
    elif previous and not Path(previous).is_file():  # named on purpose: silently using the defaults would surprise
        raise ConfigError(f"config file {previous} (ORDERSTREAM_CONFIG) does not exist; fix the variable or unset it")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _invalid(exc) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise _unreadable(exc) from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop("ORDERSTREAM_CONFIG", None)
            else:
                os.environ["ORDERSTREAM_CONFIG"] = previous


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """settings with some values replaced (None values are ignored), validated like every other source.

    settings.model_copy(update=...) skips validation: a `--partitions 0` from the command line went through it
    unchecked (and -3 reached the AdminClient, which raised). model_validate runs the sources again (BaseSettings
    has its own __init__), but every field is passed, so none of their values can win over these."""
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if not overrides:
        return settings
    try:
        return Settings.model_validate(settings.model_dump() | overrides)
    except ValidationError as exc:
        raise _invalid(exc) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise _unreadable(exc) from None


def _invalid(exc: Any) -> ConfigError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    return ConfigError(f"invalid setting {where}: {first['msg']}", setting=where, reason=first["msg"])


def _unreadable(exc: Exception) -> ConfigError:
    """The TOML source parses the file inside Settings(): its errors give the position, never the file's name."""
    where = os.environ.get("ORDERSTREAM_CONFIG") or DEFAULT_CONFIG_FILE
    if isinstance(exc, OSError):
        return ConfigError(f"cannot read config file {where}: {exc.strerror or exc}")
    kind = "UTF-8" if isinstance(exc, UnicodeDecodeError) else "TOML"
    return ConfigError(f"config file {where} is not valid {kind}: {exc}; fix it or pass another one with -c")
