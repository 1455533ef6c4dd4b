"""Finding the .avsc files: <group>/<TypeName>.v<N>.avsc under a root, in the package or in any directory.

Pure reading: no Avro library here. Both the catalog (which refuses a bad layout) and the compatibility check (which
reports it) start from discover().
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

FILE_NAME = re.compile(r"(?P<type>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc")
NAMESPACE_ROOT = "orderstream"


@dataclass(frozen=True, slots=True)
class SchemaSource:
    """One schema file as found: its type name and version (from the file name), group (its folder) and JSON."""

    type_name: str
    version: int
    group: str
    location: str
    definition: dict[str, Any]
    text: str

    @property
    def namespace(self) -> str:
        return str(self.definition.get("namespace", ""))


@dataclass(frozen=True, slots=True)
class Discovery:
    """What discover() found: the usable sources and one line per file or type it could not accept."""

    sources: tuple[SchemaSource, ...]
    problems: tuple[str, ...]


def package_root() -> Traversable:
    """The folder of .avsc files shipped in the package."""
    return files("orderstream.schemas").joinpath("avro")


def discover(root: Traversable | Path | str | None = None) -> Discovery:
    """Read every *.avsc under root (default: the package's) and check the layout rules of avro/README.md."""
    base: Traversable = package_root() if root is None else (Path(root) if isinstance(root, str) else root)
    if not base.is_dir():
        return Discovery((), (f"{base} is not a directory",))
    problems: list[str] = []
    sources: list[SchemaSource] = []
    for group, entry in _walk(base, ""):
        source = _read(group, entry, problems)
        if source is not None:
            sources.append(source)
    sources, layout_problems = _check_versions(sources)
    return Discovery(tuple(sources), tuple(problems + layout_problems))


def _walk(folder: Traversable, group: str) -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.is_dir():
            yield from _walk(entry, entry.name)
        elif entry.name.endswith(".avsc"):
            yield group, entry


def _read(group: str, entry: Traversable, problems: list[str]) -> SchemaSource | None:
    location = f"{group}/{entry.name}" if group else entry.name
    match = FILE_NAME.fullmatch(entry.name)
    if match is None:
        problems.append(f"{location}: file name is not <TypeName>.v<N>.avsc")
        return None
    try:
        text = entry.read_text(encoding="utf-8")
        definition = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{location}: not a readable JSON file ({exc})")
        return None
    type_name, version = match["type"], int(match["version"])
    if not isinstance(definition, dict) or definition.get("type") != "record":
        problems.append(f"{location}: the top-level schema must be a record")
        return None
    name = str(definition.get("name", ""))
    if name.rpartition(".")[2] != type_name:
        problems.append(f"{location}: record name {name!r} does not match the file name ({type_name})")
        return None
    expected_namespace = f"{NAMESPACE_ROOT}.{group}" if group else None
    namespace = definition.get("namespace")
    if expected_namespace and "." not in name and namespace != expected_namespace:
        problems.append(f"{location}: namespace {namespace!r} should be {expected_namespace!r} (its folder)")
        return None
    return SchemaSource(type_name, version, group, location, definition, text)


def _check_versions(sources: list[SchemaSource]) -> tuple[list[SchemaSource], list[str]]:
    """Keep types whose versions are 1..N in one group; report the others (a gap would hide an untested pair)."""
    by_type: dict[str, list[SchemaSource]] = defaultdict(list)
    for source in sources:
        by_type[source.type_name].append(source)
    kept: list[SchemaSource] = []
    problems: list[str] = []
    for type_name, versions in sorted(by_type.items()):
        versions.sort(key=lambda source: source.version)
        numbers = [source.version for source in versions]
        groups = sorted({source.group for source in versions})
        if len(groups) > 1:
            problems.append(f"{type_name}: versions are split across folders {groups}")
        elif numbers != list(range(1, len(numbers) + 1)):
            problems.append(f"{type_name}: versions must be 1..N without gaps or duplicates, found {numbers}")
        else:
            kept.extend(versions)
    return kept, problems
