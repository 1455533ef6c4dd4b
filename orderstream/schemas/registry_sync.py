"""The package's schema catalog and a schema registry side by side: push every version (`schemas register`) and
compare them (`schemas check --registry`).

Each type is one subject (record-name strategy, confluent.subject_of). Versions are registered oldest first, and the
subject is set to FULL_TRANSITIVE after its first version, so every later one is checked against all before it: a
reader of any version reads a record of any other. The registry does the check; its refusal is reported as it gave it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderstream.schemas.catalog import SchemaCatalog, SchemaEntry
from orderstream.schemas.confluent import subject_of
from orderstream.schemas.errors import RegistryError, RegistryUnavailable

COMPATIBILITY = "FULL_TRANSITIVE"


@dataclass(frozen=True, slots=True)
class Registered:
    subject: str
    version: int  # the catalog's version (the .avsc file's)
    schema_id: int


class RegistrationRefused(RegistryError):
    """The registry refused one schema version; the message is the one line to show."""

    def __init__(self, subject: str, version: int, reason: str) -> None:
        super().__init__(f"{subject} v{version} refused by the registry: {reason}")
        self.subject, self.version, self.reason = subject, version, reason


def register_all(
    client: Any,
    catalog: SchemaCatalog,
    definitions: dict[str, str],
    on_registered: Callable[[Registered], None] = lambda _: None,
) -> list[Registered]:
    """Register every version of every type in order and set FULL_TRANSITIVE per subject. Idempotent: a version
    already there keeps its id. Stops at the first refusal (RegistrationRefused) or outage (RegistryUnavailable)."""
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    from orderstream.schemas.confluent import registry_call

    done = []
    for type_name in catalog.type_names():
        for entry in catalog.versions(type_name):
            subject = subject_of(entry)
            if entry.version == 2:  # the subject exists now (some registries refuse a config for an unknown one)
                registry_call(subject, client.set_compatibility, subject, COMPATIBILITY)
            try:
                schema_id = client.register_schema(subject, Schema(definitions[entry.location], "AVRO"))
            except SchemaRegistryError as exc:
                if exc.http_status_code < 500 and exc.http_status_code not in (401, 403):
                    raise RegistrationRefused(subject, entry.version, _reason(exc)) from None
                registry_call(subject, _raise, exc)
            except Exception as exc:  # noqa: BLE001 - classified by registry_call (outage or not)
                registry_call(subject, _raise, exc)
            if entry.version == 1 and len(catalog.versions(type_name)) == 1:
                registry_call(subject, client.set_compatibility, subject, COMPATIBILITY)
            registered = Registered(subject, entry.version, int(schema_id))
            done.append(registered)
            on_registered(registered)
    return done


def compare(client: Any, catalog: SchemaCatalog, definitions: dict[str, str]) -> list[str]:
    """One line per difference between the catalog and the registry (empty: they agree): a version the registry
    lacks, a registry version the catalog lacks, a subject not at FULL_TRANSITIVE."""
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    from orderstream.schemas.confluent import registry_call

    problems: list[str] = []
    for type_name in catalog.type_names():
        entries: tuple[SchemaEntry, ...] = catalog.versions(type_name)
        subject = subject_of(entries[0])
        try:
            registered_versions = client.get_versions(subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                problems.append(f"{subject}: not in the registry ({len(entries)} version(s) in the catalog)")
                continue
            registry_call(subject, _raise, exc)
        except Exception as exc:  # noqa: BLE001 - classified by registry_call
            registry_call(subject, _raise, exc)
        known_ids = set()
        for entry in entries:
            try:
                found = client.lookup_schema(subject, Schema(definitions[entry.location], "AVRO"))
                known_ids.add(found.schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code >= 500:
                    registry_call(subject, _raise, exc)
                problems.append(f"{subject} v{entry.version}: not in the registry ({entry.location})")
        if len(registered_versions) > len(known_ids):
            problems.append(
                f"{subject}: the registry has {len(registered_versions)} version(s), the catalog {len(entries)}"
            )
        try:
            level = client.get_compatibility(subject)
        except SchemaRegistryError:
            level = None
        if level != COMPATIBILITY:
            problems.append(f"{subject}: compatibility {level or 'unset'}, not {COMPATIBILITY}")
    return problems


def _reason(exc: Any) -> str:
    message = " ".join(str(exc.error_message or "").split())
    return f"{message} (HTTP {exc.http_status_code}, error {exc.error_code})"


def _raise(exc: Exception):
    raise exc


__all__ = ["COMPATIBILITY", "Registered", "RegistrationRefused", "RegistryUnavailable", "compare", "register_all"]
