"""Property tests: every generated message survives the wire unchanged, and no junk ever decodes."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderstream.schemas.catalog import default_catalog
from orderstream.schemas.codec import Codec
from orderstream.schemas.errors import DecodeError
from orderstream.schemas.mapper import registered_classes

CODEC = Codec()
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
UTC_TIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999), timezones=st.just(UTC)
)
OFFSET_TIMES = st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))),
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for any field type the mapper supports, over the full range the wire can carry."""
    if hint is str:
        return st.text(max_size=40)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return LONG
    if hint is datetime:
        return UTC_TIMES | OFFSET_TIMES
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (arm,) = [arm for arm in typing.get_args(hint) if arm is not type(None)]
        return st.none() | strategy_for(arm)
    if origin is tuple:
        return st.lists(strategy_for(typing.get_args(hint)[0]), max_size=4).map(tuple)
    if dataclasses.is_dataclass(hint):
        return messages_of(hint)  # type: ignore[arg-type]
    raise TypeError(f"no strategy for {hint!r}")


def messages_of(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{field.name: strategy_for(hints[field.name]) for field in dataclasses.fields(cls)})


ANY_MESSAGE = st.one_of(*(messages_of(cls) for cls in registered_classes()))
HEADERS = [entry.header for entry in default_catalog().entries()]


@pytest.mark.parametrize("cls", registered_classes(), ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_encode_then_decode_is_identity_for_every_type(cls: type, data: st.DataObject) -> None:
    message = data.draw(messages_of(cls))

    decoded = CODEC.decode(CODEC.encode(message))

    assert type(decoded) is cls
    assert decoded == message


@settings(max_examples=300, deadline=None)
@given(ANY_MESSAGE)
def test_encoding_is_deterministic_and_canonical(message: Any) -> None:
    value = CODEC.encode(message)

    assert CODEC.encode(CODEC.decode(value)) == value


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_decode(value: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(value)


@settings(max_examples=2000, deadline=None)
@given(header=st.sampled_from(HEADERS), body=st.binary(max_size=120))
def test_a_known_header_on_a_random_body_decodes_to_that_type_or_raises(header: bytes, body: bytes) -> None:
    """Avro has no checksum: random bytes can spell a valid record. What must never happen is another exception or
    an object of another type."""
    try:
        decoded = CODEC.decode(header + body)
    except DecodeError:
        return
    assert type(decoded).__name__ == default_catalog().by_fingerprint(header[2:]).type_name  # type: ignore[union-attr]


@settings(max_examples=500, deadline=None)
@given(message=ANY_MESSAGE, data=st.data())
def test_a_cut_or_extended_value_never_decodes(message: Any, data: st.DataObject) -> None:
    value = CODEC.encode(message)
    cut = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=16))

    with pytest.raises(DecodeError):
        CODEC.decode(value[:cut])
    with pytest.raises(DecodeError):
        CODEC.decode(value + extra)
