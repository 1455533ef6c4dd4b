"""A real Apicurio Registry for tests: KafkaSQL storage on the test broker, free ports, its own journal topic."""

from __future__ import annotations

import uuid
from pathlib import Path

from orderstream.broker.daemon import free_port
from orderstream.broker.registry import ApicurioDistribution, LocalRegistry, RegistrySpec

APICURIO_VERSION = "3.3.3"


def test_registry(home: Path, bootstrap: str, cache_dir: Path | None = None) -> LocalRegistry:
    """A registry (not started) journaling to its own topic on the broker at bootstrap."""
    from orderstream.config import Settings

    spec = RegistrySpec(
        home=home,
        port=free_port(),
        management_port=free_port(),
        bootstrap=bootstrap,
        topic_prefix=f"reg{uuid.uuid4().hex[:8]}.",
        heap="256m",
    )
    cache = cache_dir or Settings().cache_dir
    return LocalRegistry(spec, ApicurioDistribution(APICURIO_VERSION, cache))


def register_package_schemas(url: str) -> None:
    import time

    from orderstream.schemas.catalog import default_catalog
    from orderstream.schemas.confluent import package_definitions, registry_client
    from orderstream.schemas.errors import RegistryUnavailable
    from orderstream.schemas.registry_sync import register_all

    # a generous timeout: a KafkaSQL write waits for the journal to come back, slow on a loaded machine
    deadline = time.monotonic() + 120
    while True:
        try:
            register_all(registry_client(url, timeout_s=60), default_catalog(), package_definitions())
            return
        except RegistryUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class EarlyRegistry:
    """The session's registry, launched in the background as soon as the session's broker is known (Apicurio takes
    half a minute to start: other tests run meanwhile) when a collected test needs it; `ready()` waits for it."""

    def __init__(self) -> None:
        self.wanted = False
        self.registry: LocalRegistry | None = None
        self.process = None
        self.error: Exception | None = None

    def launch(self, home: Path, bootstrap: str) -> None:
        if not self.wanted or self.registry is not None or self.error is not None:
            return
        try:
            self.registry = test_registry(home, bootstrap)
            self.process = self.registry.launch(echo=lambda _: None)
        except Exception as exc:  # noqa: BLE001 - reported by ready(), in the test that needs the registry
            self.error = exc

    def ready(self, home: Path, bootstrap: str, timeout_s: float = 240.0) -> LocalRegistry:
        self.wanted = True
        self.launch(home, bootstrap)
        if self.error is not None:
            raise self.error
        assert self.registry is not None
        self.registry.wait_until_ready(self.process, timeout_s)
        return self.registry

    def stop(self) -> None:
        if self.registry is not None:
            self.registry.stop()


EARLY = EarlyRegistry()  # one per test session (process)
