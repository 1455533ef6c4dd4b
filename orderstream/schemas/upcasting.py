"""Upcasters: explicit functions that carry an old record forward where Avro schema resolution cannot.

An upcaster registered for (type name, N) takes a record (dict) shaped like version N of that type, as read from the
wire, and returns it shaped like version N+1. Between upcasters, and after the last one, ordinary Avro resolution
(defaults for added fields, dropped removed fields, promotions) does the rest, so each upcaster only states what
resolution cannot: a value computed from old fields, a split or merged field, a changed meaning.

Production registers none yet (OrderPlaced v1 -> v2 only added an optional field, which resolution handles).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from orderstream.schemas.catalog import SchemaCatalog
from orderstream.schemas.errors import CatalogError

Record = dict[str, Any]
Upcaster = Callable[[Record], Record]


class UpcasterRegistry:
    """An immutable map (type name, from version) -> upcaster. Build a new registry to add one."""

    def __init__(self, upcasters: Mapping[tuple[str, int], Upcaster] | None = None) -> None:
        self._upcasters: Mapping[tuple[str, int], Upcaster] = MappingProxyType(dict(upcasters or {}))

    def get(self, type_name: str, from_version: int) -> Upcaster | None:
        return self._upcasters.get((type_name, from_version))

    def keys(self) -> tuple[tuple[str, int], ...]:
        return tuple(self._upcasters)

    def __len__(self) -> int:
        return len(self._upcasters)

    def check(self, catalog: SchemaCatalog) -> None:
        """Every upcaster must start from a version that has a newer one in the catalog."""
        for type_name, version in self._upcasters:
            if type_name not in catalog or not 1 <= version < catalog.newest(type_name).version:
                raise CatalogError(f"upcaster for {type_name} v{version} has no v{version + 1} to upcast to")


PRODUCTION_UPCASTERS = UpcasterRegistry()


def read_plan(
    registry: UpcasterRegistry, catalog: SchemaCatalog, type_name: str, writer_version: int
) -> tuple[dict[str, Any] | None, Callable[[Record], Record] | None]:
    """How to read a record written with writer_version so that it ends up shaped like the newest version.

    Returns (reader schema for the first read, or None to read with the writer schema alone; then a function to
    apply to the record read, or None when Avro resolution alone gets there).
    """
    newest = catalog.newest(type_name).version
    steps = [version for version in range(writer_version, newest) if registry.get(type_name, version) is not None]
    if not steps:
        return (catalog.newest(type_name).schema if writer_version != newest else None), None
    first_reader = catalog.version(type_name, steps[0]).schema if steps[0] != writer_version else None
    chain: list[Callable[[Record], Record]] = []
    for index, version in enumerate(steps):
        chain.append(registry.get(type_name, version))  # type: ignore[arg-type]
        target = steps[index + 1] if index + 1 < len(steps) else newest
        if target != version + 1:
            upcast_to = catalog.version(type_name, version + 1).schema
            chain.append(_resolver(upcast_to, catalog.version(type_name, target).schema))

    def upcast(record: Record) -> Record:
        for step in chain:
            record = step(record)
        return record

    return first_reader, upcast


def _resolver(writer: dict[str, Any], reader: dict[str, Any]) -> Callable[[Record], Record]:
    """Avro resolution of a record already in memory: write it with one version, read it with another."""
    from fastavro import schemaless_reader, schemaless_writer

    def resolve(record: Record) -> Record:
        buffer = io.BytesIO()
        schemaless_writer(buffer, writer, record)
        buffer.seek(0)
        return schemaless_reader(buffer, writer, reader)  # type: ignore[return-value]

    return resolve
