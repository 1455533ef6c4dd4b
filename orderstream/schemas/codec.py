"""The codec: domain message <-> Kafka record value (Avro single-object encoding) and CloudEvents headers.

Value layout: C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema | Avro binary body.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from orderstream.schemas.catalog import HEADER_SIZE, MAGIC, SchemaCatalog, SchemaEntry, default_catalog
from orderstream.schemas.cloudevents import binary_headers
from orderstream.schemas.errors import CatalogError, DecodeError, DecodeFailure, EncodeError
from orderstream.schemas.mapper import Mapper
from orderstream.schemas.upcasting import PRODUCTION_UPCASTERS, UpcasterRegistry, read_plan


@dataclass(slots=True)
class _Reader:
    """Everything decode needs for one writer fingerprint, worked out once."""

    writer: SchemaEntry
    writer_schema: dict[str, Any]
    reader_schema: dict[str, Any] | None  # None: read with the writer schema alone (it is the newest)
    upcast: Callable[[dict[str, Any]], dict[str, Any]] | None
    build: Callable[[dict[str, Any]], Any]
    fast: Callable[[bytes], Any] | None = None  # the specialised decoder (writer schema is the newest, no upcast),
    # generated on first use (a process that never decodes a type never pays for it)


@dataclass(slots=True)
class _Writer:
    entry: SchemaEntry
    header: bytes
    schema: dict[str, Any]
    fast: Callable[[Any, bytes], bytes] | None = None  # the specialised encoder: (message, header) -> value
    ce_type: bytes = b""


class Codec:
    """Encodes registered messages with their type's newest schema and decodes values written with any version.

    Guarantees:
    - encode(m) starts with C3 01 and the newest schema's fingerprint; decode(encode(m)) == m.
    - decode reads with the writer schema found by fingerprint, resolved to the newest reader schema, then upcast;
      it returns an instance of a registered class or raises DecodeError (reason says why) - never another
      exception, never a partial object. A value must be consumed exactly: trailing bytes are an error.
    - Every registered class has a newest schema with exactly its fields (checked when the codec is built).
    - Thread-safe after construction: all schemas are parsed and all plans built in __init__ (the specialised
      functions are generated on a type's first use; a race only generates the same function twice).
    """

    def __init__(
        self,
        catalog: SchemaCatalog | None = None,
        *,
        mapper: Mapper | None = None,
        upcasters: UpcasterRegistry = PRODUCTION_UPCASTERS,
        specialise: bool = True,
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
            writer = self._writers[cls] = _Writer(entry, entry.header, entry.schema, None, entry.ce_type.encode())  # type: ignore[index]
            if specialise:
                writer.fast = _lazy(writer, "encode", entry, cls)  # type: ignore[arg-type]
        self._readers: dict[bytes, _Reader] = {}
        for entry in self.catalog.entries():
            cls = self.mapper.class_of(entry.type_name)
            if cls is None:
                continue  # a schema without a class (a retired type): its values raise DecodeError(UNMAPPED)
            reader_schema, upcast = read_plan(upcasters, self.catalog, entry.type_name, entry.version)
            reader = self._readers[entry.header] = _Reader(
                entry, entry.schema, reader_schema, upcast, self.mapper.builder(cls)
            )
            if specialise and reader_schema is None and upcast is None:
                reader.fast = _lazy(reader, "decode", entry, cls)

    def writer_schema(self, message_type: type) -> SchemaEntry:
        """The schema a message of this type is written with (its newest version)."""
        writer = self._writers.get(message_type)
        if writer is None:
            raise EncodeError(f"{message_type.__qualname__} is not a registered message type")
        return writer.entry

    def encode(self, message: Any, header: bytes | None = None) -> bytes:
        """The record value of a message: single-object encoding with its type's newest schema. `header` replaces the
        single-object header in front of the Avro body (ConfluentCodec's framing), written once, not copied after."""
        writer = self._writers.get(type(message))
        if writer is None:
            raise EncodeError(
                f"{type(message).__qualname__} is not a registered message type", type_name=type(message).__name__
            )
        if header is None:
            header = writer.header
        if writer.fast is not None:
            try:
                return writer.fast(message, header)
            except Exception:  # noqa: BLE001, S110 - the general path below decides (and names the error)
                pass
        buffer = BytesIO()
        buffer.write(header)
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
        if reader.fast is not None:
            try:
                return reader.fast(value)
            except Exception:  # noqa: BLE001, S110 - the general path below decides (and names the error)
                pass
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

    def headers(
        self, message: Any, source: str, content_type: tuple[str, bytes] | None = None
    ) -> list[tuple[str, bytes]]:
        """CloudEvents 1.0 Kafka binary-mode headers for the record that carries this message; `content_type` replaces
        the single-object content-type header (ConfluentCodec's)."""
        writer = self._writers.get(type(message))
        if writer is None:
            raise EncodeError(f"{type(message).__qualname__} is not a registered message type")
        return binary_headers(message, writer.ce_type, source, content_type)

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


# --- the specialised fast path ----------------------------------------------------------------------------------------
# For each registered type, encode/decode functions generated once from its newest schema and its dataclass, doing what
# fastavro + the Mapper do for that one shape without interpreting the schema per record (about 3x faster both ways).
# The general path stays the reference: the fast path raises _Fallback (or any exception) on anything unusual - a wrong
# type, an overflow, a truncated or odd body - and the caller re-runs the general path, which then either succeeds with
# the same result or raises the documented EncodeError/DecodeError. Shapes it does not know are not specialised.

_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_SMALL_LIMIT = 1 << 14


class _Fallback(Exception):
    """The fast path declines this value; the general path decides."""


class _NotSpecialised(Exception):
    """This schema has a shape the generator does not handle."""


def _varint_loop(z: int) -> bytes:
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = tuple(_varint_loop(z) for z in range(_SMALL_LIMIT))  # varints of the small zigzagged values, made once
_LOW = tuple(bytes(((z & 0x7F) | 0x80, (z >> 7) | 0x80)) for z in range(_SMALL_LIMIT))  # 14 bits, more to follow


def _varint(z: int) -> bytes:
    """The varint of a non-negative z, 14 bits per table look-up (a timestamp is 4 look-ups, not 8 loop turns)."""
    if z < 0x4000:
        return _SMALL[z]
    if z < 0x10000000:
        return _LOW[z & 0x3FFF] + _SMALL[z >> 14]
    if z < 0x40000000000:
        return _LOW[z & 0x3FFF] + _LOW[(z >> 14) & 0x3FFF] + _SMALL[z >> 28]
    return _LOW[z & 0x3FFF] + _LOW[(z >> 14) & 0x3FFF] + _LOW[(z >> 28) & 0x3FFF] + _varint(z >> 42)


def _read_varint(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a varint whose first byte (continuation bit set) was read; pos is past it."""
    z, shift = first & 0x7F, 7
    while True:
        b = buf[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise _Fallback
    if z >> 64:
        raise _Fallback
    return z, pos


_PRIMITIVE_WIDTH = {"string": 1, "long": 1, "int": 1, "boolean": 1}


class _Generator:
    """Emits the source of one encode and one decode function for a record schema and its dataclass."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "_Fallback": _Fallback, "_S": _SMALL, "_varint": _varint, "_rv": _read_varint, "_EPOCH": _EPOCH,
            "_timedelta": timedelta, "_datetime": datetime, "_new": object.__new__,
            "_LMIN": _LONG_MIN, "_LMAX": _LONG_MAX,
        }  # fmt: skip
        self.count = 0

    def var(self, prefix: str = "v") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: Any) -> str:
        name = f"_k{len(self.ns)}"
        self.ns[name] = value
        return name

    # -- encode ------------------------------------------------------------------------------------------------------

    def encode_value(self, out: list[str], schema: Any, hint: Any, expr: str, ind: str) -> None:
        kind, schema = _kind(schema)
        v = self.var()
        out.append(f"{ind}{v} = {expr}")
        if kind == "string":
            if hint is not str:
                raise _NotSpecialised(hint)
            b, n = self.var("b"), self.var("n")
            out += [f"{ind}if {v}.__class__ is not str: raise _Fallback",
                    f"{ind}{b} = {v}.encode()",
                    f"{ind}{n} = len({b}) << 1",
                    f"{ind}a(_S[{n}] if {n} < {_SMALL_LIMIT} else _varint({n}))",
                    f"{ind}a({b})"]  # fmt: skip
        elif kind == "long":
            if hint is not int:
                raise _NotSpecialised(hint)
            out.append(f"{ind}if {v}.__class__ is not int or not _LMIN <= {v} <= _LMAX: raise _Fallback")
            self._zigzag(out, v, ind)
        elif kind == "timestamp-micros":
            if hint is not datetime:
                raise _NotSpecialised(hint)
            d = self.var("d")
            out += [f"{ind}if {v}.__class__ is not _datetime or {v}.utcoffset() is None: raise _Fallback",
                    f"{ind}{d} = {v} - _EPOCH",
                    f"{ind}{v} = ({d}.days * 86400 + {d}.seconds) * 1000000 + {d}.microseconds",
                    f"{ind}if not _LMIN <= {v} <= _LMAX: raise _Fallback"]  # fmt: skip
            self._zigzag(out, v, ind)
        elif kind == "boolean":
            if hint is not bool:
                raise _NotSpecialised(hint)
            out.append(f"{ind}a(b'\\x01' if {v} is True else b'\\x00' if {v} is False else _fail())")
            self.ns["_fail"] = _fail
        elif kind == "enum":
            if not (isinstance(hint, type) and issubclass(hint, enum.Enum)):
                raise _NotSpecialised(hint)
            index = self.const({symbol: _SMALL[i << 1] for i, symbol in enumerate(schema["symbols"])})
            out.append(f"{ind}a({index}[{v}.name])")
        elif kind == "union":
            arm_hint = _optional_arm(hint)
            null_index, arm_index, arm = _null_union(schema)
            out += [f"{ind}if {v} is None: a({_SMALL[null_index << 1]!r})",
                    f"{ind}else:",
                    f"{ind}    a({_SMALL[arm_index << 1]!r})"]  # fmt: skip
            self.encode_value(out, arm, arm_hint, v, ind + "    ")
        elif kind == "array":
            item_hint = _tuple_item(hint)
            it, z = self.var("it"), self.var("z")
            out += [f"{ind}if {v}.__class__ is not tuple: raise _Fallback",
                    f"{ind}if {v}:",
                    f"{ind}    {z} = len({v}) << 1",
                    f"{ind}    a(_S[{z}] if {z} < {_SMALL_LIMIT} else _varint({z}))",
                    f"{ind}    for {it} in {v}:"]  # fmt: skip
            self.encode_value(out, schema["items"], item_hint, it, ind + "        ")
            out.append(f"{ind}a(b'\\x00')")
        elif kind == "record":
            if not dataclasses.is_dataclass(hint):
                raise _NotSpecialised(hint)
            out.append(f"{ind}if {v}.__class__ is not {self.const(hint)}: raise _Fallback")
            self.encode_fields(out, schema, hint, v, ind)
        else:
            raise _NotSpecialised(kind)

    def encode_fields(self, out: list[str], schema: dict[str, Any], cls: type, obj: str, ind: str) -> None:
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        if {f["name"] for f in schema["fields"]} != names:
            raise _NotSpecialised(cls)
        for field in schema["fields"]:
            self.encode_value(out, field["type"], hints[field["name"]], f"{obj}.{field['name']}", ind)

    def _zigzag(self, out: list[str], v: str, ind: str) -> None:
        out += [f"{ind}{v} = ({v} << 1) ^ ({v} >> 63)",
                f"{ind}a(_S[{v}] if {v} < {_SMALL_LIMIT} else _varint({v}))"]  # fmt: skip

    # -- decode ------------------------------------------------------------------------------------------------------

    def read_long(self, out: list[str], target: str, ind: str) -> None:
        b = self.var("b")
        out += [f"{ind}{b} = buf[p]",
                f"{ind}p += 1",
                f"{ind}if {b} & 0x80: {b}, p = _rv(buf, p, {b})",
                f"{ind}{target} = ({b} >> 1) ^ -({b} & 1)"]  # fmt: skip

    def decode_value(self, out: list[str], schema: Any, hint: Any, ind: str) -> str:
        """Emit code that reads one value; returns the variable holding it."""
        kind, schema = _kind(schema)
        v = self.var()
        if kind == "string":
            n = self.var("n")
            self.read_long(out, n, ind)
            out += [f"{ind}if {n} < 0 or p + {n} > size: raise _Fallback",
                    f"{ind}{v} = buf[p:p + {n}].decode()",
                    f"{ind}p += {n}"]  # fmt: skip
        elif kind == "long":
            self.read_long(out, v, ind)
        elif kind == "timestamp-micros":
            self.read_long(out, v, ind)
            out.append(f"{ind}{v} = _EPOCH + _timedelta(0, 0, {v})")
        elif kind == "boolean":
            out += [f"{ind}{v} = buf[p]",
                    f"{ind}p += 1",
                    f"{ind}if {v} == 1: {v} = True",
                    f"{ind}elif {v} == 0: {v} = False",
                    f"{ind}else: raise _Fallback"]  # fmt: skip
        elif kind == "enum":
            members = self.const(tuple(hint[symbol] for symbol in schema["symbols"]))
            self.read_long(out, v, ind)
            out += [f"{ind}if not 0 <= {v} < {len(schema['symbols'])}: raise _Fallback",
                    f"{ind}{v} = {members}[{v}]"]  # fmt: skip
        elif kind == "union":
            arm_hint = _optional_arm(hint)
            null_index, arm_index, arm = _null_union(schema)
            i = self.var("i")
            self.read_long(out, i, ind)
            out += [f"{ind}if {i} == {null_index}: {v} = None",
                    f"{ind}elif {i} == {arm_index}:"]  # fmt: skip
            inner = self.decode_value(out, arm, arm_hint, ind + "    ")
            out += [f"{ind}    {v} = {inner}",
                    f"{ind}else: raise _Fallback"]  # fmt: skip
        elif kind == "array":
            item_hint = _tuple_item(hint)
            items, n, k = self.var("items"), self.var("n"), self.var("k")
            if _kind(schema["items"])[0] not in ("string", "long", "timestamp-micros", "boolean", "enum", "record"):
                raise _NotSpecialised(schema["items"])
            if _kind(schema["items"])[0] == "record" and not schema["items"]["fields"]:
                raise _NotSpecialised(schema["items"])  # zero-width items: a junk count could loop for ever
            out.append(f"{ind}{items} = []")
            out.append(f"{ind}while True:")
            self.read_long(out, n, ind + "    ")
            out += [f"{ind}    if {n} == 0: break",
                    f"{ind}    if {n} < 0:",
                    f"{ind}        {n} = -{n}"]  # fmt: skip
            self.read_long(out, k, ind + "        ")
            out += [f"{ind}    if {n} > size - p: raise _Fallback",
                    f"{ind}    for _ in range({n}):"]  # fmt: skip
            inner = self.decode_value(out, schema["items"], item_hint, ind + "        ")
            out += [f"{ind}        {items}.append({inner})",
                    f"{ind}{v} = tuple({items})"]  # fmt: skip
        elif kind == "record":
            if not dataclasses.is_dataclass(hint):
                raise _NotSpecialised(hint)
            values = self.decode_fields(out, schema, hint, ind)
            setters = _slot_setters(hint)
            if setters is None:
                args = ", ".join(f"{name}={value}" for name, value in values)
                out.append(f"{ind}{v} = {self.const(hint)}({args})")
            else:  # a frozen slotted dataclass's __init__ sets each field through object.__setattr__: 3x slower
                out.append(f"{ind}{v} = _new({self.const(hint)})")
                out += [f"{ind}{self.const(setters[name])}({v}, {value})" for name, value in values]
        else:
            raise _NotSpecialised(kind)
        return v

    def decode_fields(self, out: list[str], schema: dict[str, Any], cls: type, ind: str) -> list[tuple[str, str]]:
        hints = typing.get_type_hints(cls)
        if {f["name"] for f in schema["fields"]} != {f.name for f in dataclasses.fields(cls)}:
            raise _NotSpecialised(cls)
        values = []
        for field in schema["fields"]:
            if not field["name"].isidentifier():
                raise _NotSpecialised(field["name"])
            values.append((field["name"], self.decode_value(out, field["type"], hints[field["name"]], ind)))
        return values


def _slot_setters(cls: type) -> dict[str, Callable[[Any, Any], None]] | None:
    """Each field's slot setter when cls is a slotted dataclass whose __init__ only assigns its fields (no
    __post_init__, every field in __init__), so that object.__new__ plus the setters builds an equal instance."""
    if hasattr(cls, "__post_init__") or "__slots__" not in cls.__dict__:
        return None
    setters = {}
    for field in dataclasses.fields(cls):
        descriptor = getattr(cls, field.name, None)
        if not field.init or type(descriptor).__name__ != "member_descriptor":
            return None
        setters[field.name] = descriptor.__set__
    return setters


def _fail() -> Any:
    raise _Fallback


def _kind(schema: Any) -> tuple[str, Any]:
    if isinstance(schema, list):
        return "union", schema
    if isinstance(schema, str):
        if schema in _PRIMITIVE_WIDTH:
            return schema, schema
        raise _NotSpecialised(schema)  # a named type referenced again: left to the general path
    kind = schema.get("type")
    if schema.get("logicalType") == "timestamp-micros" and kind == "long":
        return "timestamp-micros", schema
    if "logicalType" in schema:
        raise _NotSpecialised(schema["logicalType"])
    if kind in ("record", "enum", "array"):
        return kind, schema
    if isinstance(kind, str) and kind in _PRIMITIVE_WIDTH:
        return kind, kind
    raise _NotSpecialised(kind)


def _null_union(schema: list) -> tuple[int, int, Any]:
    if len(schema) != 2 or "null" not in schema:
        raise _NotSpecialised(schema)
    null_index = schema.index("null")
    return null_index, 1 - null_index, schema[1 - null_index]


def _optional_arm(hint: Any) -> Any:
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        raise _NotSpecialised(hint)
    args = typing.get_args(hint)
    arms = [arm for arm in args if arm is not type(None)]
    if len(args) != 2 or len(arms) != 1:
        raise _NotSpecialised(hint)
    return arms[0]


def _tuple_item(hint: Any) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is not tuple or len(args) != 2 or args[1] is not Ellipsis:
        raise _NotSpecialised(hint)
    return args[0]


_SPECIALISED: dict[tuple[str, bytes, type], Callable[[Any], Any] | None] = {}  # shared by every Codec


def _specialised(direction: str, entry: SchemaEntry, cls: type) -> Callable[[Any], Any] | None:
    """The generated encode or decode function for values of cls written with entry's schema (None: not supported)."""
    key = (direction, entry.header, cls)
    if key in _SPECIALISED:
        return _SPECIALISED[key]
    gen = _Generator()
    try:
        if direction == "encode":
            body = ["def encode(m, header):", "    out = [header]", "    a = out.append"]
            gen.encode_value(body, entry.schema, cls, "m", "    ")
            body.append("    return b''.join(out)")
        else:
            body = ["def decode(buf):", "    size = len(buf)", f"    p = {HEADER_SIZE}"]
            result = gen.decode_value(body, entry.schema, cls, "    ")
            body += ["    if p != size: raise _Fallback", f"    return {result}"]
        exec("\n".join(body), gen.ns)
        function = gen.ns[direction]
    except _NotSpecialised:
        function = None
    _SPECIALISED[key] = function
    return function


def _lazy(holder: _Writer | _Reader, direction: str, entry: SchemaEntry, cls: type) -> Callable[..., Any]:
    """A stand-in that generates the specialised function on first call and puts it in holder.fast."""

    def first_call(value: Any, *header: bytes) -> Any:
        function = holder.fast = _specialised(direction, entry, cls)
        if function is None:
            raise _Fallback
        return function(value, *header)

    return first_call
