"""Apache Kafka's own jars, fetched once from Maven Central with Maven into the cache directory.

The broker (org.apache.kafka:kafka_2.13), the tools (kafka-tools: perf tools, FeatureCommand, consumer groups) and a
log4j2 binding for SLF4J are resolved with all their dependencies and copied to <cache>/kafka-<version>/libs.
Later starts reuse them; a half-finished download is never mistaken for a complete one (a marker file is written last).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orderstream.broker.errors import BrokerError

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>orderstream.local</groupId><artifactId>kafka-distribution</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
"""


@dataclass(frozen=True)
class KafkaDistribution:
    """The jars of one Apache Kafka version in the cache; `ensure()` fetches them when missing."""

    version: str
    cache_dir: Path

    @property
    def home(self) -> Path:
        return self.cache_dir / f"kafka-{self.version}"

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def classpath(self) -> str:
        return str(self.libs / "*")

    @property
    def is_complete(self) -> bool:
        return (self.home / "COMPLETE").is_file()

    def ensure(self, echo=print) -> KafkaDistribution:
        if self.is_complete:
            return self
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "mvn not found: install Maven (apt-get install maven) or point ORDERSTREAM_BOOTSTRAP_SERVERS "
                "at an existing Kafka cluster"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        if self.libs.exists():
            shutil.rmtree(self.libs)
        (self.home / "pom.xml").write_text(_POM.format(version=self.version))
        echo(f"fetching Apache Kafka {self.version} jars from Maven Central into {self.libs} (once)...")
        result = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={self.libs}"],
            cwd=self.home,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not any(self.libs.glob("kafka_2.13-*.jar")):
            detail = _first_error_line(result.stdout + result.stderr)
            raise BrokerError(
                f"could not fetch Apache Kafka {self.version} with Maven ({detail}); check access to Maven Central "
                "or set kafka_version to a published 4.x release"
            )
        (self.home / "COMPLETE").write_text(self.version + "\n")
        return self


def _first_error_line(output: str) -> str:
    for line in output.splitlines():
        if "ERROR" in line:
            return line.replace("[ERROR]", "").strip()[:200]
    return output.strip().splitlines()[-1][:200] if output.strip() else "no output"
