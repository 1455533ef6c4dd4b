"""The schema catalog: every .avsc version, parsed once, found by fingerprint or by type name.

The fingerprint is the CRC-64-AVRO of the schema's Parsing Canonical Form, as the 8 little-endian bytes that follow
the C3 01 marker of Avro single-object encoding (the Avro specification's byte order, and Java's).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from orderstream.schemas.errors import CatalogError

MAGIC = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(MAGIC) + FINGERPRINT_SIZE


@dataclass(frozen=True, slots=True, eq=False)
class SchemaEntry:
    """One version of one type: its parsed fastavro schema and its wire fingerprint."""

    type_name: str
    version: int
    group: str
    namespace: str
    fingerprint: bytes
    schema: dict[str, Any]
    location: str

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.type_name}" if self.namespace else self.type_name

    @property
    def ce_type(self) -> str:
        """The CloudEvents type of records written with this schema, e.g. orderstream.orders.OrderPlaced.v2."""
        return f"{self.full_name}.v{self.version}"

    @property
    def header(self) -> bytes:
        """The 10 bytes every value written with this schema starts with."""
        return MAGIC + self.fingerprint

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()


def fingerprint_of(schema: dict[str, Any] | str) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, as the 8 bytes written on the wire (little-endian)."""
    from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

    parsed = parse_schema(schema) if not (isinstance(schema, dict) and "__fastavro_parsed" in schema) else schema
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


class SchemaCatalog:
    """Every schema version of every type, each parsed exactly once.

    Guarantees: (type name, version) pairs and fingerprints are unique; every type's versions are 1..N; lookups never
    parse. Immutable after construction, so one catalog can be shared by any number of codecs and threads.
    """

    def __init__(self, entries: Iterable[SchemaEntry]) -> None:
        self._by_fingerprint: dict[bytes, SchemaEntry] = {}
        self._versions: dict[str, tuple[SchemaEntry, ...]] = {}
        grouped: dict[str, list[SchemaEntry]] = {}
        for entry in entries:
            clash = self._by_fingerprint.get(entry.fingerprint)
            if clash is not None:
                raise CatalogError(
                    f"{entry.location} and {clash.location} have the same canonical form (fingerprint "
                    f"{entry.fingerprint_hex}); a new version must change the schema, not only its docs"
                )
            self._by_fingerprint[entry.fingerprint] = entry
            grouped.setdefault(entry.type_name, []).append(entry)
        for type_name, versions in grouped.items():
            versions.sort(key=lambda entry: entry.version)
            if [entry.version for entry in versions] != list(range(1, len(versions) + 1)):
                raise CatalogError(f"{type_name}: versions must be 1..N, found {[e.version for e in versions]}")
            self._versions[type_name] = tuple(versions)

    @classmethod
    def from_directory(cls, root: Traversable | Path | str | None = None) -> SchemaCatalog:
        """Load every <group>/<TypeName>.v<N>.avsc under root (default: the package's schemas)."""
        from fastavro.schema import SchemaParseException, parse_schema

        from orderstream.schemas.sources import discover

        found = discover(root)
        if found.problems:
            raise CatalogError("; ".join(found.problems))
        entries = []
        for source in found.sources:
            try:
                parsed = parse_schema(source.definition)
            except (SchemaParseException, ValueError, TypeError, KeyError) as exc:
                raise CatalogError(f"{source.location}: not a valid Avro schema ({exc})") from None
            entries.append(
                SchemaEntry(
                    type_name=source.type_name,
                    version=source.version,
                    group=source.group,
                    namespace=source.namespace,
                    fingerprint=fingerprint_of(parsed),
                    schema=parsed,
                    location=source.location,
                )
            )
        return cls(entries)

    def by_fingerprint(self, fingerprint: bytes) -> SchemaEntry | None:
        """The schema whose fingerprint (8 wire bytes) this is, or None."""
        return self._by_fingerprint.get(fingerprint)

    def newest(self, type_name: str) -> SchemaEntry:
        """The newest version of a type: what writers write and readers read into. KeyError if unknown."""
        return self._versions[type_name][-1]

    def version(self, type_name: str, version: int) -> SchemaEntry:
        """One version of a type. KeyError if there is no such version."""
        versions = self._versions[type_name]
        if not 1 <= version <= len(versions):
            raise KeyError(f"{type_name} v{version}")
        return versions[version - 1]

    def versions(self, type_name: str) -> tuple[SchemaEntry, ...]:
        return self._versions[type_name]

    def type_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._versions))

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._versions

    def entries(self) -> tuple[SchemaEntry, ...]:
        """Every version of every type, ordered by group, type name and version."""
        return tuple(
            entry
            for versions in sorted(self._versions.values(), key=lambda v: (v[0].group, v[0].type_name))
            for entry in versions
        )

    def __len__(self) -> int:
        return len(self._by_fingerprint)


@functools.cache
def default_catalog() -> SchemaCatalog:
    """The package's schemas, loaded on first use and shared afterwards."""
    return SchemaCatalog.from_directory()
