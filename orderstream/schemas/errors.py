"""The wire layer's exceptions: every failure to encode, decode or load schemas is one of these."""

from __future__ import annotations

import enum


class DecodeFailure(enum.StrEnum):
    """What was wrong with a value that could not be decoded (DecodeError.reason)."""

    NOT_BYTES = "not_bytes"
    EMPTY = "empty"
    TRUNCATED_HEADER = "truncated_header"
    BAD_MAGIC = "bad_magic"
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"
    BAD_BODY = "bad_body"
    TRAILING_BYTES = "trailing_bytes"
    UPCAST_FAILED = "upcast_failed"
    UNMAPPED = "unmapped"


class SchemaError(Exception):
    """Base of every error raised by orderstream.schemas."""


class CatalogError(SchemaError):
    """The schema files cannot be loaded as a catalog (bad name or JSON, duplicate, gap); the message says which."""


class EncodeError(SchemaError):
    """A message cannot be encoded: its type is not registered, or a value does not fit its schema."""

    def __init__(self, message: str, *, type_name: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name


class DecodeError(SchemaError):
    """A value is not a readable orderstream message. `reason` says what was wrong; no partial object is returned.

    `type_name` and `version` name the writer schema when the header was readable (useful in a dead-letter record).
    """

    def __init__(
        self, reason: DecodeFailure, detail: str, *, type_name: str | None = None, version: int | None = None
    ) -> None:
        where = f" ({type_name} v{version})" if type_name else ""
        super().__init__(f"{reason.value}{where}: {detail}")
        self.reason = reason
        self.detail = detail
        self.type_name = type_name
        self.version = version
