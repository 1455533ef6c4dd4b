"""The Confluent wire format: 00 | 4-byte big-endian schema id | Avro binary body, with ids from a schema registry.

Any Confluent-compatible registry works (Apicurio's /apis/ccompat/v7, Confluent's, Karapace); confluent-kafka's
SchemaRegistryClient talks to it. One subject per record type, named after the record's full name (the record-name
strategy: a topic carries several event types), every .avsc version registered under it in order.

The Avro body is the same in both encodings, so ConfluentCodec reuses the single-object Codec (and its generated fast
paths) and only swaps the 10-byte single-object header for the 5-byte Confluent one, and back when reading.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

from orderstream.schemas.catalog import HEADER_SIZE, SchemaCatalog, SchemaEntry, fingerprint_of
from orderstream.schemas.codec import Codec
from orderstream.schemas.errors import (
    DecodeError,
    DecodeFailure,
    EncodeError,
    RegistryError,
    RegistryUnavailable,
)

CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_SIZE = 5
CONTENT_TYPE = "application/vnd.confluent.avro"  # ce content-type of a Confluent-framed value
SINGLE_OBJECT_MAGIC_BYTE = 0xC3


def subject_of(entry: SchemaEntry) -> str:
    """A type's registry subject (record-name strategy): its full name, e.g. orderstream.orders.OrderPlaced."""
    return entry.full_name


@functools.cache
def package_definitions() -> dict[str, str]:
    """The JSON text to register for each schema file of the package, by location (docs and defaults kept: the
    registry's compatibility check needs the defaults, which the parsing canonical form drops)."""
    from orderstream.schemas.sources import discover

    return {source.location: definition_text(source.definition) for source in discover().sources}


def definition_text(definition: dict[str, Any]) -> str:
    return json.dumps(definition, separators=(",", ":"))


def registry_client(url: str, *, username=None, password=None, token=None, timeout_s: float = 10.0) -> Any:
    """A confluent-kafka SchemaRegistryClient for url, with basic or bearer credentials (SecretStr or str)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    def reveal(secret) -> str | None:
        return secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret

    conf: dict[str, Any] = {"url": url, "timeout": timeout_s, "max.retries": 1, "retries.wait.ms": 200}
    if username:
        conf["basic.auth.user.info"] = f"{username}:{reveal(password) or ''}"
    elif token:
        conf["bearer.auth.credentials.source"] = "STATIC_TOKEN"
        conf["bearer.auth.token"] = reveal(token)
        conf["bearer.auth.logical.cluster"] = "default"  # a Confluent Cloud header; other registries ignore it
    return SchemaRegistryClient(conf)


def registry_call(what: str, call, *args, **kwargs):
    """Run one client call; RegistryUnavailable when nothing answered, RegistryError (the registry's reason) when it
    refused."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        return call(*args, **kwargs)
    except SchemaRegistryError as exc:
        if exc.http_status_code >= 500:
            raise RegistryUnavailable(
                f"{what}: the registry failed ({exc.http_status_code}): {exc.error_message}"
            ) from None
        raise RegistryError(f"{what}: {exc.error_message} (HTTP {exc.http_status_code})") from None
    except (OSError, ValueError) as exc:  # httpx errors are OSError-like; a malformed reply is a ValueError
        raise RegistryUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # httpx.TransportError and friends do not derive from OSError
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise RegistryUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None
        raise


class SchemaIds:
    """The registry ids of a catalog's schemas: resolved once (one request per schema), then looked up in memory.

    Guarantees: id_of(entry) and entry_of(id) never call the registry for a schema resolved by resolve_all(); an id
    found on the wire that is not one of them costs one request, once per process (its answer, known or unknown,
    is kept). A registry that does not answer raises RegistryUnavailable, never a DecodeError (the record is fine)."""

    def __init__(self, client: Any, catalog: SchemaCatalog, definitions: dict[str, str], auto_register: bool = False):
        self.client = client
        self.catalog = catalog
        self.definitions = definitions
        self.auto_register = auto_register
        self._ids: dict[bytes, int] = {}  # fingerprint -> id
        self._entries: dict[int, SchemaEntry | None] = {}  # id -> entry (None: not a schema of the catalog)
        self._lock = threading.Lock()

    def resolve_all(self) -> None:
        """Find the id of every schema version of the catalog (registering it first when auto_register is set)."""
        from confluent_kafka.schema_registry import Schema

        for entry in self.catalog.entries():
            if entry.fingerprint in self._ids:
                continue
            subject, schema = subject_of(entry), Schema(self.definitions[entry.location], "AVRO")
            if self.auto_register:
                schema_id = registry_call(subject, self.client.register_schema, subject, schema)
            else:
                try:
                    schema_id = registry_call(subject, self.client.lookup_schema, subject, schema).schema_id
                except RegistryUnavailable:
                    raise
                except RegistryError as exc:
                    raise RegistryError(
                        f"{subject} v{entry.version} is not registered ({exc}); run `orderstream schemas register` "
                        "or set schema_registry_auto_register"
                    ) from None
            self._remember(int(schema_id), entry)

    def _remember(self, schema_id: int, entry: SchemaEntry | None) -> None:
        with self._lock:
            self._entries[schema_id] = entry
            if entry is not None:
                self._ids[entry.fingerprint] = schema_id

    def id_of(self, entry: SchemaEntry) -> int:
        return self._ids[entry.fingerprint]

    def entry_of(self, schema_id: int) -> SchemaEntry | None:
        """The catalog schema registered under schema_id, or None when the registry has no such id or it is not one
        of the catalog's schemas."""
        try:
            return self._entries[schema_id]
        except KeyError:
            pass
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            schema = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                self._remember(schema_id, None)
                return None
            return registry_call(f"schema id {schema_id}", _raise, exc)
        except Exception as exc:  # noqa: BLE001 - classified by registry_call
            return registry_call(f"schema id {schema_id}", _raise, exc)
        try:
            entry = self.catalog.by_fingerprint(fingerprint_of(json.loads(schema.schema_str)))
        except Exception:  # noqa: BLE001 - not Avro, or not parseable: not one of ours
            entry = None
        self._remember(schema_id, entry)
        return entry


def _raise(exc: Exception):
    raise exc


class ConfluentCodec:
    """Writes the Confluent wire format; reads it and Avro single-object encoding alike, told apart by the first byte
    (00 Confluent, C3 01 single object), so a pipeline can switch its writers with no replay.

    Same interface and guarantees as Codec: decode(encode(m)) == m; decode raises DecodeError for anything it cannot
    read (an unknown schema id among them), never returns a partial object; thread-safe. The CloudEvents headers
    are Codec's, with content-type application/vnd.confluent.avro and ce_dataschema the schema's registry URL.
    """

    def __init__(self, codec: Codec, ids: SchemaIds, registry_url: str) -> None:
        self.single_object = codec
        self.catalog = codec.catalog
        self.mapper = codec.mapper
        self.ids = ids
        self._prefixes: dict[type, bytes] = {}
        self._dataschemas: dict[type, tuple[str, bytes]] = {}
        base = registry_url.rstrip("/")
        for type_name in self.mapper.type_names():
            cls = self.mapper.class_of(type_name)
            schema_id = ids.id_of(codec.writer_schema(cls))  # type: ignore[arg-type]
            self._prefixes[cls] = CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")  # type: ignore[index]
            self._dataschemas[cls] = ("ce_dataschema", f"{base}/schemas/ids/{schema_id}".encode())  # type: ignore[index]

    def writer_schema(self, message_type: type) -> SchemaEntry:
        return self.single_object.writer_schema(message_type)

    def encode(self, message: Any) -> bytes:
        """The record value of a message: 00, the registry id of its type's newest schema, the Avro body."""
        prefix = self._prefixes.get(type(message))
        if prefix is None:
            raise EncodeError(
                f"{type(message).__qualname__} is not a registered message type", type_name=type(message).__name__
            )
        return self.single_object.encode(message, prefix)

    def decode(self, value: bytes) -> Any:
        """The domain object a value holds, whichever of the two encodings it uses."""
        if type(value) is not bytes and isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        if type(value) is bytes and value[:1] == CONFLUENT_MAGIC:
            return self.single_object.decode(
                self._single_object_header(value) + memoryview(value)[CONFLUENT_HEADER_SIZE:]
            )
        return self.single_object.decode(value)

    def writer_of(self, value: bytes) -> SchemaEntry:
        if isinstance(value, (bytes, bytearray, memoryview)) and bytes(value[:1]) == CONFLUENT_MAGIC:
            header = self._single_object_header(bytes(value))
            return self.single_object.writer_of(header)
        return self.single_object.writer_of(value)

    def _single_object_header(self, value: bytes) -> bytes:
        if len(value) < CONFLUENT_HEADER_SIZE:
            raise DecodeError(
                DecodeFailure.TRUNCATED_HEADER,
                f"{len(value)} bytes, the Confluent header alone is {CONFLUENT_HEADER_SIZE}",
            )
        schema_id = int.from_bytes(value[1:CONFLUENT_HEADER_SIZE], "big")
        entry = self.ids.entry_of(schema_id)
        if entry is None:
            raise DecodeError(DecodeFailure.UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is not a schema of the catalog")
        return entry.header

    def headers(self, message: Any, source: str) -> list[tuple[str, bytes]]:
        headers = self.single_object.headers(message, source, _CONTENT_TYPE_HEADER)
        headers.append(self._dataschemas[type(message)])
        return headers


_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())


def transcode(value: bytes, to_format: str, ids: SchemaIds, catalog: SchemaCatalog) -> bytes:
    """The same record in the other framing (the Avro body is untouched, so its writer schema stays): "confluent" or
    "single-object". Raises DecodeError for a value in neither format, or with a schema the other side lacks."""
    value = bytes(value) if isinstance(value, (bytearray, memoryview)) else value
    if not isinstance(value, bytes) or not value:
        raise DecodeError(DecodeFailure.EMPTY, "no value to re-encode")
    if value[:1] == CONFLUENT_MAGIC:
        if to_format == "confluent":
            return value
        if len(value) < CONFLUENT_HEADER_SIZE:
            raise DecodeError(DecodeFailure.TRUNCATED_HEADER, f"{len(value)} bytes")
        schema_id = int.from_bytes(value[1:CONFLUENT_HEADER_SIZE], "big")
        entry = ids.entry_of(schema_id)
        if entry is None:
            raise DecodeError(DecodeFailure.UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is not a schema of the catalog")
        return entry.header + value[CONFLUENT_HEADER_SIZE:]
    if value[0] == SINGLE_OBJECT_MAGIC_BYTE and len(value) >= HEADER_SIZE:
        if to_format == "single-object":
            return value
        entry = catalog.by_fingerprint(value[2:HEADER_SIZE])
        if entry is None:
            raise DecodeError(
                DecodeFailure.UNKNOWN_FINGERPRINT, f"no schema has fingerprint {value[2:HEADER_SIZE].hex()}"
            )
        return CONFLUENT_MAGIC + ids.id_of(entry).to_bytes(4, "big") + value[HEADER_SIZE:]
    raise DecodeError(DecodeFailure.BAD_MAGIC, f"starts with {value[:2].hex()}: neither Confluent (00) nor c301")


class Reframer:
    """Re-frames records for a copy into to_format, headers included (content-type; ce_dataschema for Confluent). A
    value in neither format (or of a schema the other side lacks) is copied as it is: a copy does not judge records,
    the readers of the copy dead-letter what they cannot read."""

    def __init__(self, to_format: str, ids: SchemaIds, catalog: SchemaCatalog, registry_url: str) -> None:
        if to_format not in ("confluent", "single-object"):
            raise ValueError(f"unknown wire format {to_format!r}")
        self.name = to_format
        self.ids, self.catalog, self.base = ids, catalog, registry_url.rstrip("/")
        self.unchanged = 0

    def __call__(self, value: bytes, headers: list) -> tuple[bytes, list]:
        from orderstream.schemas.cloudevents import CONTENT_TYPE as SINGLE_OBJECT_CONTENT_TYPE

        try:
            framed = transcode(value, self.name, self.ids, self.catalog)
        except DecodeError:
            self.unchanged += 1
            return value, headers
        kept = [(k, v) for k, v in headers if k not in ("content-type", "ce_dataschema")]
        if self.name == "confluent":
            schema_id = int.from_bytes(framed[1:CONFLUENT_HEADER_SIZE], "big")
            kept += [
                ("content-type", CONTENT_TYPE.encode()),
                ("ce_dataschema", f"{self.base}/schemas/ids/{schema_id}".encode()),
            ]
        else:
            kept.append(("content-type", SINGLE_OBJECT_CONTENT_TYPE.encode()))
        return framed, kept
