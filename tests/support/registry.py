"""A real Apicurio Registry for tests: KafkaSQL storage on the test broker, free ports, its own journal topic."""

from __future__ import annotations

import uuid
from pathlib import Path

from orderstream.broker.local import free_port
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
    from orderstream.schemas.catalog import default_catalog
    from orderstream.schemas.confluent import package_definitions, registry_client
    from orderstream.schemas.registry_sync import register_all

    register_all(registry_client(url), default_catalog(), package_definitions())
