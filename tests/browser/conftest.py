"""Fixtures of the browser tests: a real pipeline (`orderstream run ... --no-api` child processes on the session's
Kafka broker, SQLite views), a real `orderstream serve`, and a headless system Chromium driven by selenium.

A missing browser (or selenium) skips these tests, and FAILS them when ORDERSTREAM_REQUIRE_BROWSER=1 (.ci/run)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orderstream.config import Settings, load_settings
from tests.conftest import _delete_topics, _unavailable
from tests.support.api_server import ApiServer, Child, _env, _root_args

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Stack:
    settings: Settings
    api: ApiServer
    services: dict[str, Child]
    logs: Path

    def start(self, *names: str) -> None:
        """Run these services (one `orderstream run` process for them)."""
        key = "+".join(names)
        args = [sys.executable, "-m", "orderstream.cli.main", *_root_args(self.settings), "run", *names]
        self.services[key] = Child(args, self.logs / f"run-{key}.log", _env(self.settings, None))

    def stop(self, *names: str) -> None:
        self.services.pop("+".join(names)).stop()

    def output(self) -> str:
        return "\n".join(f"--- {k}:\n{c.output()[-2000:]}" for k, c in self.services.items()) + (
            f"\n--- api:\n{self.api.output()[-2000:]}"
        )


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every service and view running (the payment service in a process of its own, so a test can hold orders in
    PLACED by stopping it), the API and console served by `orderstream serve`, on topics of their own."""
    from orderstream.kafka.topics import ensure_topics

    logs = tmp_path_factory.mktemp("console")
    prefix = f"b{uuid.uuid4().hex[:10]}."
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, data_dir=logs / "data", partitions=3
    )
    ensure_topics(settings)
    services: dict[str, Child] = {}
    api = None
    try:
        stack = Stack(settings, None, services, logs)  # type: ignore[arg-type]
        stack.start("order", "inventory", "shipping", "projections")
        stack.start("payment")
        api = stack.api = ApiServer(settings, logs / "serve.log")
        yield stack
    finally:
        if api is not None:
            api.stop()
        for child in services.values():
            child.stop()
        _delete_topics(kafka_bootstrap, prefix)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from tests.browser.chromium import BrowserMissing, start_chromium

    try:
        driver = start_chromium()
    except BrowserMissing as exc:
        _unavailable("Chromium", "ORDERSTREAM_REQUIRE_BROWSER", str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - a browser that does not start is a browser we do not have
        _unavailable("Chromium", "ORDERSTREAM_REQUIRE_BROWSER", f"it did not start: {exc}")
        return
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
