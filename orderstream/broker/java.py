"""Finding a Java runtime that can run Apache Kafka 4.x (Java 17 or newer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from orderstream.broker.errors import BrokerError

MIN_JAVA = 17


def find_java(java_home: Path | None = None) -> str:
    """The java executable: settings.java_home, else $JAVA_HOME, else java on PATH; checked to be Java 17+."""
    home = java_home or (Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else None)
    java = str(home / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        raise BrokerError(
            "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless) or set JAVA_HOME, "
            "or point ORDERSTREAM_BOOTSTRAP_SERVERS at an existing Kafka cluster"
        )
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise BrokerError(
            f"{java} is Java {major}; Apache Kafka 4.x needs Java {MIN_JAVA}+: set JAVA_HOME to a newer JDK"
        )
    return java


def java_major_version(java: str) -> int:
    result = subprocess.run([java, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise BrokerError(f"could not tell the version of {java}: is it a working Java runtime?")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major
