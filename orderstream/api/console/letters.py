"""A dead letter as the console shows it: its provenance (where it came from and why it failed), its headers, and its
bytes decoded where possible (an Avro message of the wire contract, else UTF-8 text), as hex otherwise."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from orderstream.ops.dlq import StoredLetter
from orderstream.ops.tail import jsonable

HEX_BYTES_SHOWN = 4096  # the hex dump of a larger value is cut here (the page says so)


@dataclass(frozen=True)
class DecodedValue:
    """kind: 'avro' (decoded with the wire contract's schemas), 'text' (valid UTF-8), 'empty' or 'binary'."""

    kind: str
    text: str | None
    hex_lines: list[str]
    truncated: bool


@lru_cache(maxsize=1)
def _codec():
    from orderstream.schemas.codec import Codec

    return Codec()


def decode_value(value: bytes | None) -> DecodedValue:
    data = value or b""
    hex_lines = [_hex_line(data, start) for start in range(0, min(len(data), HEX_BYTES_SHOWN), 16)]
    truncated = len(data) > HEX_BYTES_SHOWN
    if not data:
        return DecodedValue("empty", None, [], False)
    from orderstream.schemas.errors import DecodeError

    try:
        message = _codec().decode(data)
    except DecodeError:
        pass
    else:
        body = {"type": type(message).__name__, **jsonable(message)}
        return DecodedValue("avro", json.dumps(body, indent=2, default=str), hex_lines, truncated)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return DecodedValue("binary", None, hex_lines, truncated)
    if all(ch.isprintable() or ch in "\n\r\t" for ch in text):
        return DecodedValue("text", text, hex_lines, truncated)
    return DecodedValue("binary", None, hex_lines, truncated)


def _hex_line(data: bytes, start: int) -> str:
    chunk = data[start : start + 16]
    hexes = " ".join(f"{b:02x}" for b in chunk)
    printable = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
    return f"{start:08x}  {hexes:<47}  {printable}"


def letter_id(letter: StoredLetter) -> str:
    return f"{letter.dlq_topic}:{letter.dlq_partition}:{letter.dlq_offset}"


def provenance(letter: StoredLetter) -> list[tuple[str, Any]]:
    """The dlq.* headers the runtime wrote, in the order an operator reads them."""
    topic, _, rest = letter.original.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    return [
        ("original topic", topic),
        ("original partition", partition),
        ("original offset", rest),
        ("consumer group", letter.group),
        ("stage", letter.stage),
        ("error", f"{letter.error_class}: {letter.error_message}"),
        ("key", letter.key if letter.key is not None else "(none)"),
        ("retried", _retried(letter)),
    ]


def _retried(letter: StoredLetter) -> str:
    if letter.retried:
        return "yes: sent back to its group, not failed again (yet)"
    if letter.retry_failures:
        return f"failed again after {letter.retry_failures} retr{'y' if letter.retry_failures == 1 else 'ies'}: waiting"
    return "no"


def headers_text(letter: StoredLetter) -> list[tuple[str, str]]:
    return [(name, (value or b"").decode(errors="replace")) for name, value in letter.headers]
