"""The codec: domain message <-> Kafka record value (Avro single-object encoding) and CloudEvents headers.

Value layout: C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema | Avro binary body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from orderstream.schemas.catalog import HEADER_SIZE, MAGIC, SchemaCatalog, SchemaEntry, default_catalog
from orderstream.schemas.cloudevents import attributes
from orderstream.schemas.errors import CatalogError, DecodeError, DecodeFailure, EncodeError
from orderstream.schemas.mapper import Mapper
from orderstream.schemas.upcasting import PRODUCTION_UPCASTERS, UpcasterRegistry, read_plan


@dataclass(frozen=True, slots=True)
class _Reader:
    """Everything decode needs for one writer fingerprint, worked out once."""

    writer: SchemaEntry
    writer_schema: dict[str, Any]
    reader_schema: dict[str, Any] | None  # None: read with the writer schema alone (it is the newest)
    upcast: Callable[[dict[str, Any]], dict[str, Any]] | None
    build: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class _Writer:
    entry: SchemaEntry
    header: bytes
    schema: dict[str, Any]


class Codec:
    """Encodes registered messages with their type's newest schema and decodes values written with any version.

    Guarantees:
    - encode(m) starts with C3 01 and the newest schema's fingerprint; decode(encode(m)) == m.
    - decode reads with the writer schema found by fingerprint, resolved to the newest reader schema, then upcast;
      it returns an instance of a registered class or raises DecodeError (reason says why) - never another
      exception, never a partial object. A value must be consumed exactly: trailing bytes are an error.
    - Every registered class has a newest schema with exactly its fields (checked when the codec is built).
    - Thread-safe after construction: all schemas are parsed and all plans built in __init__.
    """

    def __init__(
        self,
        catalog: SchemaCatalog | None = None,
        *,
        mapper: Mapper | None = None,
        upcasters: UpcasterRegistry = PRODUCTION_UPCASTERS,
    ) -> None:
        self.catalog = catalog if catalog is not None else default_catalog()
        self.mapper = mapper if mapper is not None else Mapper()
        upcasters.check(self.catalog)
        self._writers: dict[type, _Writer] = {}
        for type_name in self.mapper.type_names():
            cls = self.mapper.class_of(type_name)
            if type_name not in self.catalog:
                raise CatalogError(f"{type_name} is registered but has no schema")
            entry = self.catalog.newest(type_name)
            _check_fields(entry, self.mapper.field_names(cls))  # type: ignore[arg-type]
            self._writers[cls] = _Writer(entry, entry.header, entry.schema)  # type: ignore[index]
        self._readers: dict[bytes, _Reader] = {}
        for entry in self.catalog.entries():
            cls = self.mapper.class_of(entry.type_name)
            if cls is None:
                continue  # a schema without a class (a retired type): its values raise DecodeError(UNMAPPED)
            reader_schema, upcast = read_plan(upcasters, self.catalog, entry.type_name, entry.version)
            self._readers[entry.header] = _Reader(entry, entry.schema, reader_schema, upcast, self.mapper.builder(cls))

    def writer_schema(self, message_type: type) -> SchemaEntry:
        """The schema a message of this type is written with (its newest version)."""
        writer = self._writers.get(message_type)
        if writer is None:
            raise EncodeError(f"{message_type.__qualname__} is not a registered message type")
        return writer.entry

    def encode(self, message: Any) -> bytes:
        """The record value of a message: single-object encoding with its type's newest schema."""
        writer = self._writers.get(type(message))
        if writer is None:
            raise EncodeError(
                f"{type(message).__qualname__} is not a registered message type", type_name=type(message).__name__
            )
        buffer = BytesIO()
        buffer.write(writer.header)
        try:
            schemaless_writer(buffer, writer.schema, self.mapper.to_record(message))
        except EncodeError as exc:
            exc.type_name = exc.type_name or writer.entry.type_name
            raise
        except Exception as exc:  # fastavro raises TypeError, ValueError, OverflowError, UnicodeEncodeError...
            raise EncodeError(
                f"{writer.entry.type_name} does not fit {writer.entry.ce_type}: {type(exc).__name__}: {exc}",
                type_name=writer.entry.type_name,
            ) from exc
        return buffer.getvalue()

    def decode(self, value: bytes) -> Any:
        """The domain object a record value holds, read into the newest version of its type."""
        if type(value) is not bytes:
            value = _as_bytes(value)
        reader = self._readers.get(value[:HEADER_SIZE])
        if reader is None:
            raise self._header_error(value)
        buffer = BytesIO(value)
        buffer.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(buffer, reader.writer_schema, reader.reader_schema)
        except Exception as exc:  # EOFError, IndexError, UnicodeDecodeError, OverflowError, ...: all mean "bad body"
            raise _error(DecodeFailure.BAD_BODY, f"{type(exc).__name__}: {exc}", reader) from exc
        if buffer.tell() != len(value):
            raise _error(DecodeFailure.TRAILING_BYTES, f"{len(value) - buffer.tell()} bytes after the body", reader)
        if reader.upcast is not None:
            try:
                record = reader.upcast(record)  # type: ignore[arg-type]
            except Exception as exc:
                raise _error(DecodeFailure.UPCAST_FAILED, f"{type(exc).__name__}: {exc}", reader) from exc
        try:
            return reader.build(record)
        except Exception as exc:
            raise _error(DecodeFailure.UNMAPPED, f"{type(exc).__name__}: {exc}", reader) from exc

    def writer_of(self, value: bytes) -> SchemaEntry:
        """The schema a value was written with, from its header alone (the body is not read)."""
        value = _as_bytes(value)
        entry = self.catalog.by_fingerprint(value[len(MAGIC) : HEADER_SIZE]) if value[: len(MAGIC)] == MAGIC else None
        if entry is None or len(value) < HEADER_SIZE:
            raise self._header_error(value)
        return entry

    def headers(self, message: Any, source: str) -> list[tuple[str, bytes]]:
        """CloudEvents 1.0 Kafka binary-mode headers for the record that carries this message."""
        entry = self.writer_schema(type(message))
        return [(name, text.encode("utf-8")) for name, text in attributes(message, entry.ce_type, source)]

    def _header_error(self, value: bytes) -> DecodeError:
        if not value:
            return DecodeError(DecodeFailure.EMPTY, "the value is empty")
        if value[: len(MAGIC)] != MAGIC[: len(value)]:
            return DecodeError(DecodeFailure.BAD_MAGIC, f"starts with {value[:2].hex()}, not c301 (Avro single-object)")
        if len(value) < HEADER_SIZE:
            return DecodeError(DecodeFailure.TRUNCATED_HEADER, f"{len(value)} bytes, the header alone is {HEADER_SIZE}")
        fingerprint = value[len(MAGIC) : HEADER_SIZE]
        entry = self.catalog.by_fingerprint(fingerprint)
        if entry is not None:  # a known schema whose type no class maps
            return DecodeError(
                DecodeFailure.UNMAPPED, "no registered class", type_name=entry.type_name, version=entry.version
            )
        return DecodeError(DecodeFailure.UNKNOWN_FINGERPRINT, f"no schema has fingerprint {fingerprint.hex()}")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise DecodeError(DecodeFailure.NOT_BYTES, f"expected bytes, got {type(value).__name__}")


def _error(reason: DecodeFailure, detail: str, reader: _Reader) -> DecodeError:
    return DecodeError(reason, detail, type_name=reader.writer.type_name, version=reader.writer.version)


def _check_fields(entry: SchemaEntry, field_names: tuple[str, ...]) -> None:
    schema_fields = {field["name"] for field in entry.schema["fields"]}
    if schema_fields != set(field_names):
        missing, extra = set(field_names) - schema_fields, schema_fields - set(field_names)
        raise CatalogError(
            f"{entry.ce_type} does not match its dataclass: fields missing from the schema {sorted(missing)}, "
            f"fields the dataclass lacks {sorted(extra)}"
        )
