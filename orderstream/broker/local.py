"""A real single-node Apache Kafka broker in KRaft mode, run under java from Maven-fetched jars. No Docker.

Layout under <data_dir>/broker: server.properties, log4j2.properties, data/ (the KRaft log dirs), broker.log and
broker.pid. start() formats the storage once, launches the broker in the background with a small heap and returns
when it answers a metadata request; stop() stops the process named by the pid file, cleanly (SIGTERM, then SIGKILL
after a grace period).
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from orderstream.broker.daemon import Daemon, refuse_used_ports
from orderstream.broker.distribution import KafkaDistribution
from orderstream.broker.errors import BrokerError
from orderstream.broker.java import find_java

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.apache.name = org.apache.kafka
logger.apache.level = {level}
"""


@dataclass(frozen=True)
class BrokerSpec:
    """Where and how one local broker runs."""

    home: Path
    port: int
    controller_port: int
    heap: str = "512m"
    node_id: int = 1
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    extra_properties: tuple[tuple[str, str], ...] = ()
    sasl_port: int | None = None  # a SASL_PLAINTEXT listener with SCRAM-SHA-256 (and -512) besides PLAINTEXT
    scram_users: tuple[tuple[str, str], ...] = ()  # (name, password) pairs created when the storage is formatted
    quorum_voters: str | None = None  # "1@host:port,2@host:port,...": a multi-node cluster; default this node alone
    # Kafka's authorizer on (StandardAuthorizer): what no ACL allows is denied (`orderstream security init` creates
    # the pipeline's ACLs). The PLAINTEXT listener (local, inter-broker) stays a super user, as do super_users.
    acls: bool = False
    super_users: tuple[str, ...] = ()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str | None:
        return f"{self.host}:{self.sasl_port}" if self.sasl_port is not None else None

    def server_properties(self) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.quorum_voters or f"{self.node_id}@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "6",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.segment.bytes": str(256 * 1024 * 1024),
        }
        if self.sasl_port is not None:
            sasl = f"SASL_PLAINTEXT://{self.host}:{self.sasl_port}"
            props["listeners"] += f",{sasl}"
            props["advertised.listeners"] += f",{sasl}"
            props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            props["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512"
            for mechanism in ("scram-sha-256", "scram-sha-512"):
                props[f"listener.name.sasl_plaintext.{mechanism}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        if self.acls:
            props["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            props["super.users"] = ";".join(["User:ANONYMOUS", *(f"User:{user}" for user in self.super_users)])
            props["allow.everyone.if.no.acl.found"] = "false"
        props.update(dict(self.extra_properties))
        return "".join(f"{key}={value}\n" for key, value in props.items())


class LocalBroker:
    """One local broker: start, stop, and whether it is running. Safe to call start() twice."""

    def __init__(self, spec: BrokerSpec, distribution: KafkaDistribution, java_home: Path | None = None) -> None:
        self.spec = spec
        self.distribution = distribution
        self.java_home = java_home
        self.daemon = Daemon("the broker", spec.home / "broker.pid", self._last_log_error)

    @property
    def pid_file(self) -> Path:
        return self.daemon.pid_file

    @property
    def log_file(self) -> Path:
        return self.spec.home / "broker.log"

    def pid(self) -> int | None:
        """The pid of the broker this data dir started, if that process is still alive."""
        return self.daemon.pid()

    def start(self, timeout_s: float = 90.0, echo=print) -> bool:
        """Start the broker; False when it was already running (nothing is done then)."""
        if self.pid() is not None:
            return False
        process = self.launch(echo=echo)
        self.wait_until_ready(process, timeout_s)
        return True

    def launch(self, echo=print, cluster_id: str | None = None) -> subprocess.Popen:
        """Format the storage if new and spawn the broker; returns without waiting for it to answer."""
        java = find_java(self.java_home)
        refuse_used_ports(
            self.spec.host,
            (self.spec.port, self.spec.controller_port),
            "ORDERSTREAM_BROKER_PORT / ORDERSTREAM_CONTROLLER_PORT",
        )
        self.distribution.ensure(echo=echo)
        home = self.spec.home
        (home / "data").mkdir(parents=True, exist_ok=True)
        (home / "server.properties").write_text(self.spec.server_properties())
        (home / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_file, level=self.spec.log_level))
        if not (home / "data" / "meta.properties").exists():
            self._format(java, cluster_id or new_cluster_id())
        command = [
            java,
            f"-Xmx{self.spec.heap}",
            f"-Xms{min_heap(self.spec.heap)}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "-cp",
            self.distribution.classpath,
            "kafka.Kafka",
            str(home / "server.properties"),
        ]
        return self.daemon.spawn(command, home / "broker.out")

    def _format(self, java: str, cluster_id: str) -> None:
        result = subprocess.run(
            [
                java,
                f"-Dlog4j2.configurationFile={self.spec.home / 'log4j2.properties'}",
                "-cp",
                self.distribution.classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.spec.home / "server.properties"),
                *[
                    arg
                    for name, password in self.spec.scram_users
                    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                    for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
                ],
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BrokerError(f"formatting the KRaft storage in {self.spec.home / 'data'} failed: {last[0]}")

    def wait_until_ready(self, process: subprocess.Popen, timeout_s: float) -> None:
        from orderstream.broker.probe import broker_answers

        self.daemon.wait_until_ready(
            process, lambda: broker_answers(self.spec.bootstrap, timeout_s=1.0), timeout_s, self.spec.bootstrap, 0.3
        )

    def _last_log_error(self) -> str:
        for path in (self.log_file, self.spec.home / "broker.out"):
            if path.exists():
                lines = [
                    ln for ln in path.read_text(errors="replace").splitlines() if "ERROR" in ln or "Exception" in ln
                ]
                if lines:
                    return lines[-1][:300]
        return f"see {self.log_file}"

    def stop(self, grace_s: float = 30.0) -> bool:
        """Stop the broker started from this data dir; False when none was running."""
        return self.daemon.stop(grace_s)

    def kill(self) -> None:
        """SIGKILL, for fault tests: the broker gets no chance to clean up."""
        self.daemon.kill()


def new_cluster_id() -> str:
    """A random KRaft cluster id, as Kafka's own Uuid.randomUuid makes them: one that does not look like an option."""
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


def min_heap(heap: str) -> str:
    """Start with a quarter of the maximum heap (at least 64m)."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    megabytes = int(heap[:-1]) * units[heap[-1].lower()]
    return f"{max(64, int(megabytes // 4))}m"


def local_broker(settings) -> LocalBroker:
    """The local broker described by the settings."""
    spec = BrokerSpec(
        home=Path(settings.data_dir).resolve() / "broker",
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap=settings.broker_heap,
    )
    return LocalBroker(spec, KafkaDistribution(settings.kafka_version, Path(settings.cache_dir)), settings.java_home)
