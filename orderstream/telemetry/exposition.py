"""Serving the metrics: a /metrics endpoint per process, or one for a whole process tree.

- One process (`orderstream run NAME`, `serve`): prometheus-client's default registry, served on settings.metrics_port.
- A process tree (`orderstream run all`): the supervisor makes a fresh directory <data_dir>/metrics/<its pid>, gives
  it to every child as PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode: each child writes its values
  to memory-mapped files there) and serves, on metrics_port, what MultiProcessCollector reads from it: one scrape
  target whose counters are the children's sums. A child so started does not serve (ORDERSTREAM_METRICS_SUPERVISED).
  A child that exits is marked dead (its live gauges go away); the directory is removed when the supervisor stops.
  A child's file is created empty and then sized: a scrape in between made MultiProcessCollector fail with
  struct.error (a 500 seen in CI while `run all` started its children), so a file still empty is left out of that
  scrape (SettledFilesCollector); its values appear in the next one.
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orderstream.config import Settings

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SUPERVISED_ENV = "ORDERSTREAM_METRICS_SUPERVISED"


class MetricsServerError(RuntimeError):
    """The /metrics server cannot listen where the settings say (the port is taken, the address is not ours)."""


def tree_registry(directory: str) -> Any:
    """A registry of the values the processes of a tree write into `directory`."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    class SettledFilesCollector(MultiProcessCollector):
        """MultiProcessCollector without the files that a starting process has created but not yet sized."""

        def collect(self):
            return self.merge([f for f in glob.glob(os.path.join(directory, "*.db")) if _sized(f)], accumulate=True)

    tree = CollectorRegistry()
    SettledFilesCollector(tree, path=directory)
    return tree


def _sized(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:  # gone meanwhile
        return False


def registry() -> Any:
    """The registry to expose: the multiprocess collector's when this process is part of a tree, else the default."""
    from prometheus_client import REGISTRY

    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory:
        return REGISTRY
    return tree_registry(directory)


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """The current metrics in the text format the scraper asked for: (body, content type)."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry()), content_type


def serve(settings: Settings) -> Any:
    """Start the /metrics server of this process when metrics_port is set and no supervisor serves for it.
    Returns the server (call .shutdown() to stop it) or None."""
    if settings.metrics_port is None or os.environ.get(SUPERVISED_ENV):
        return None
    return _listen(settings, registry())


def _listen(settings: Settings, source: Any) -> Any:
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=source)
    except OSError as exc:
        raise MetricsServerError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc.strerror or exc}"
        ) from None
    return server


@dataclass
class ProcessTree:
    """The metrics of a supervisor's children, served as one target. Use as a context manager."""

    settings: Settings
    directory: Path
    server: Any = None

    @classmethod
    def start(cls, settings: Settings) -> ProcessTree | None:
        """None when metrics_port is unset (the children then keep their metrics in memory, unserved)."""
        if settings.metrics_port is None:
            return None
        directory = (settings.data_dir / "metrics" / str(os.getpid())).resolve()
        shutil.rmtree(directory, ignore_errors=True)  # a previous supervisor with our pid left it: stale values
        directory.mkdir(parents=True)
        tree = cls(settings, directory)
        try:
            tree.server = _listen(settings, tree_registry(str(directory)))
        except MetricsServerError:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return tree

    def child_env(self) -> dict[str, str]:
        """The environment of a child process: this one's, plus where to write its metrics."""
        return os.environ | {MULTIPROCESS_ENV: str(self.directory), SUPERVISED_ENV: "1"}

    def child_exited(self, pid: int) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, str(self.directory))

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        shutil.rmtree(self.directory, ignore_errors=True)
