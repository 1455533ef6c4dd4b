"""The schema check: every consecutive pair of versions of every type, read in both directions.

"new reads old" (backward): code with the newer schema reads records written with the older one - old events
replayed from the log. "old reads new" (forward): code still on the older schema reads records written with the
newer one - during a rolling deploy. Both must hold. The Apache Avro package's ReaderWriterCompatibilityChecker is the
judge; this module names the field and the reason of each problem, and adds the layout rules of avro/README.md.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from importlib.resources.abc import Traversable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orderstream.schemas.catalog import SchemaCatalog

NEW_READS_OLD = "new reads old"
OLD_READS_NEW = "old reads new"
LAYOUT = "layout"
CODE = "code"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a schema set is not safe to ship."""

    type_name: str
    direction: str  # NEW_READS_OLD, OLD_READS_NEW, LAYOUT (files) or CODE (schema vs dataclass)
    reason: str
    old_version: int | None = None
    new_version: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        versions = ""
        if self.old_version is not None and self.new_version is not None:
            reader, writer = (
                (self.new_version, self.old_version)
                if self.direction == NEW_READS_OLD
                else (self.old_version, self.new_version)
            )
            versions = f" v{reader} reading v{writer} ({self.direction})"
        elif self.new_version is not None:
            versions = f" v{self.new_version}"
        field = f", field {self.field}" if self.field else ""
        return f"{self.type_name}{versions}{field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CompatibilityReport:
    """The outcome of check(): how much was checked and every problem found (ok when there are none)."""

    root: str
    types: int
    schemas: int
    pairs: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "root": self.root,
            "types": self.types,
            "schemas": self.schemas,
            "pairs": self.pairs,
            "problems": [asdict(problem) | {"message": str(problem)} for problem in self.problems],
        }


def check(root: Traversable | Path | str | None = None) -> CompatibilityReport:
    """Check the .avsc files under root (default: the package's, which are also checked against the dataclasses)."""
    import avro.errors
    import avro.schema

    from orderstream.schemas.catalog import SchemaCatalog
    from orderstream.schemas.errors import CatalogError
    from orderstream.schemas.sources import discover, package_root

    try:
        found = discover(root)
    except OSError as exc:  # a folder under root that cannot be listed or read: a finding, not a traceback
        problem = Problem(str(exc.filename or root), LAYOUT, f"cannot be read ({exc.strerror or exc})")
        return CompatibilityReport(str(package_root() if root is None else root), 0, 0, 0, (problem,))
    problems: list[Problem] = [Problem(_type_of(line), LAYOUT, line) for line in found.problems]
    parsed: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for source in found.sources:
        try:
            parsed[source.type_name].append((source.version, avro.schema.parse(source.text)))
        except (avro.errors.AvroException, json.JSONDecodeError, TypeError, ValueError) as exc:
            problems.append(Problem(source.type_name, LAYOUT, f"{source.location}: not a valid Avro schema ({exc})"))
    pairs = 0
    for type_name, versions in sorted(parsed.items()):
        versions.sort(key=lambda item: item[0])
        for (old_version, old), (new_version, new) in pairwise(versions):
            pairs += 1
            for direction, reader, writer in ((NEW_READS_OLD, new, old), (OLD_READS_NEW, old, new)):
                for field, reason in pair_problems(reader, writer):
                    problems.append(Problem(type_name, direction, reason, old_version, new_version, field))
    if not found.problems:  # the files must also load as the codec loads them (fastavro, unique fingerprints)
        try:
            catalog = SchemaCatalog.from_directory(root)
        except CatalogError as exc:
            problems.append(Problem(_type_of(str(exc)), LAYOUT, str(exc)))
        else:
            if root is None:
                problems.extend(check_against_classes(catalog))
    return CompatibilityReport(
        root=str(package_root() if root is None else root),
        types=len(parsed),
        schemas=sum(len(versions) for versions in parsed.values()),
        pairs=pairs,
        problems=tuple(problems),
    )


def pair_problems(reader: Any, writer: Any) -> list[tuple[str | None, str]]:
    """(field, reason) for everything a reader schema cannot read of what a writer schema writes; [] if compatible.

    The whole-record verdict is the Avro checker's; field by field it is asked again to name the culprit.
    """
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

    whole = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if whole.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    found: list[tuple[str | None, str]] = []
    if reader.name != writer.name and writer.fullname not in (reader.props.get("aliases") or ()):
        found.append((None, f"record name {reader.fullname} cannot read {writer.fullname} (no alias)"))
    writer_fields = writer.fields_dict
    for reader_field in reader.fields:
        aliases = [reader_field.name, *(reader_field.props.get("aliases") or ())]
        writer_field = next((writer_fields[alias] for alias in aliases if alias in writer_fields), None)
        if writer_field is None:
            if not reader_field.has_default:
                found.append((reader_field.name, "required by the reader, absent from the writer, with no default"))
            continue
        result = ReaderWriterCompatibilityChecker().get_compatibility(reader_field.type, writer_field.type)
        if result.compatibility is SchemaCompatibilityType.incompatible:
            found.append((_field_paths(reader_field.name, reader_field.type, result.locations), _explain(result)))
    if not found:  # the checker saw something the field-by-field pass did not: report it as it said it
        where = ", ".join(sorted(whole.locations))
        found.append((None, f"{'; '.join(sorted(whole.messages))} (at {where})"))
    return found


def _explain(result: Any) -> str:
    from avro.compatibility import SchemaIncompatibilityType

    kinds = set(result.incompatibilities)
    messages = "; ".join(sorted(result.messages))
    if SchemaIncompatibilityType.missing_enum_symbols in kinds:
        return f"enum symbols {messages} of the writer are unknown to the reader (whose enum has no default)"
    if SchemaIncompatibilityType.reader_field_missing_default_value in kinds:
        return f"nested field {messages} is required by the reader, absent from the writer, and has no default"
    if SchemaIncompatibilityType.missing_union_branch in kinds:
        return f"union: {messages}"
    return messages or "incompatible types"


def _field_paths(name: str, schema: Any, locations: set[str]) -> str:
    """Dotted paths of the checker's locations under one field, e.g. lines[].quantity for /items/fields/1/type."""
    paths = sorted({_field_path(name, schema, location) for location in locations if location.strip("/")})
    return ", ".join(paths) or name


def _field_path(name: str, schema: Any, location: str) -> str:
    tokens = [token for token in location.split("/") if token]
    path, index = name, 0
    while index < len(tokens):
        token = tokens[index]
        if token == "items" and hasattr(schema, "items"):
            schema, path = schema.items, path + "[]"
        elif token == "values" and hasattr(schema, "values"):
            schema, path = schema.values, path + "{}"
        elif token == "fields" and index + 1 < len(tokens) and tokens[index + 1].isdigit():
            index += 1
            field = schema.fields[int(tokens[index])]
            schema, path = field.type, f"{path}.{field.name}"
        elif token != "type":
            break
        index += 1
    return path


def check_against_classes(catalog: SchemaCatalog) -> list[Problem]:
    """The newest schema of every registered class has exactly the dataclass's fields."""
    from orderstream.schemas.mapper import Mapper

    mapper = Mapper()
    problems = []
    for type_name in mapper.type_names():
        if type_name not in catalog:
            problems.append(Problem(type_name, CODE, "a registered message type with no schema file"))
            continue
        entry = catalog.newest(type_name)
        fields = set(mapper.field_names(mapper.class_of(type_name)))  # type: ignore[arg-type]
        schema_fields = {field["name"] for field in entry.schema["fields"]}
        for name in sorted(fields - schema_fields):
            reason = "in the dataclass, not in its newest schema"
            problems.append(Problem(type_name, CODE, reason, new_version=entry.version, field=name))
        for name in sorted(schema_fields - fields):
            reason = "in the newest schema, not in the dataclass"
            problems.append(Problem(type_name, CODE, reason, new_version=entry.version, field=name))
    return problems


def _type_of(line: str) -> str:
    """The type a layout problem line is about: 'orders/OrderPlaced.v3.avsc: ...' or 'OrderPlaced: ...'."""
    head = line.split(":", 1)[0]
    return head.rsplit("/", 1)[-1].split(".", 1)[0]
