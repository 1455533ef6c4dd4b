"""The Confluent wire format codec without a registry: ids come from an in-memory table, as after resolve_all()."""

from __future__ import annotations

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from orderstream.schemas.catalog import default_catalog
from orderstream.schemas.codec import Codec
from orderstream.schemas.confluent import CONTENT_TYPE, ConfluentCodec, SchemaIds, transcode
from orderstream.schemas.errors import DecodeError, DecodeFailure
from tests.support.orders import place_order


class _NoSuchId:
    """A registry that knows no id beyond those resolved (answers 404, as a real one does)."""

    calls = 0

    def get_schema(self, schema_id):
        self.calls += 1
        raise SchemaRegistryError(404, 40403, f"Schema {schema_id} not found")


@pytest.fixture
def codec() -> ConfluentCodec:
    ids = SchemaIds(_NoSuchId(), default_catalog(), {})
    for number, entry in enumerate(default_catalog().entries(), start=100):
        ids._remember(number, entry)
    return ConfluentCodec(Codec(), ids, "http://registry/apis/ccompat/v7")


def test_encode_is_zero_then_the_newest_schema_id_then_the_same_avro_body(codec):
    message = place_order("o-1")
    value = codec.encode(message)
    single = Codec().encode(message)
    schema_id = codec.ids.id_of(Codec().writer_schema(type(message)))
    assert value[:5] == b"\x00" + schema_id.to_bytes(4, "big") and value[5:] == single[10:]
    assert codec.decode(value) == message and codec.decode(single) == message  # both encodings read
    headers = dict(codec.headers(message, "src"))
    assert headers["content-type"] == CONTENT_TYPE.encode()
    assert headers["ce_dataschema"] == f"http://registry/apis/ccompat/v7/schemas/ids/{schema_id}".encode()


def test_an_unknown_id_is_a_decode_error_and_is_asked_once(codec):
    value = b"\x00" + (9999).to_bytes(4, "big") + codec.encode(place_order("o-2"))[5:]
    for _ in range(3):
        with pytest.raises(DecodeError) as raised:
            codec.decode(value)
        assert raised.value.reason is DecodeFailure.UNKNOWN_SCHEMA_ID
    assert codec.ids.client.calls == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"", DecodeFailure.EMPTY), (b"\x00\x00", DecodeFailure.TRUNCATED_HEADER), (b"\x07abc", DecodeFailure.BAD_MAGIC)],
)
def test_garbage_is_a_decode_error(codec, value, reason):
    with pytest.raises(DecodeError) as raised:
        codec.decode(value)
    assert raised.value.reason is reason


def test_transcode_round_trips_byte_for_byte(codec):
    single = Codec().encode(place_order("o-3"))
    confluent = transcode(single, "confluent", codec.ids, codec.catalog)
    assert confluent == codec.encode(codec.decode(single))
    assert transcode(confluent, "single-object", codec.ids, codec.catalog) == single
