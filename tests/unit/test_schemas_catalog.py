"""The catalog: every packaged .avsc parsed once, fingerprinted as the Avro specification says, found both ways."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastavro.schema import to_parsing_canonical_form

from orderstream.schemas.catalog import SchemaCatalog, default_catalog, fingerprint_of
from orderstream.schemas.errors import CatalogError
from orderstream.schemas.mapper import Mapper, registered_classes
from orderstream.schemas.sources import discover, package_root

GROUPS = {"orders", "payments", "inventory", "shipping", "commands", "replies"}


def crc64_avro(data: bytes) -> int:
    """The Avro specification's reference fingerprint64, written out independently of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_default_catalog_is_built_once() -> None:
    assert default_catalog() is default_catalog()


def test_every_registered_type_has_a_schema_and_every_schema_a_type() -> None:
    catalog = default_catalog()

    assert set(catalog.type_names()) == {cls.__name__ for cls in registered_classes()}
    assert len(catalog) == len(catalog.entries()) == len(catalog.type_names()) + 1  # OrderPlaced has two versions


def test_layout_group_namespace_and_doc() -> None:
    found = discover()

    assert found.problems == ()
    for source in found.sources:
        assert source.group in GROUPS
        assert source.namespace == f"orderstream.{source.group}"
        assert source.definition["doc"], source.location
        assert source.location == f"{source.group}/{source.type_name}.v{source.version}.avsc"


def test_newest_schema_has_exactly_the_dataclass_fields_in_order() -> None:
    catalog, mapper = default_catalog(), Mapper()

    for cls in registered_classes():
        fields = [field["name"] for field in catalog.newest(cls.__name__).schema["fields"]]
        assert tuple(fields) == mapper.field_names(cls), cls.__name__


def test_enum_symbols_are_the_python_enum_member_names() -> None:
    from orderstream.domain.events import PaymentStatus, ReservationStatus

    catalog = default_catalog()
    for type_name, field_name, enum_cls in [
        ("OrderPaymentUpdated", "payment_status", PaymentStatus),
        ("OrderLineReservationUpdated", "reservation_status", ReservationStatus),
    ]:
        field = next(f for f in catalog.newest(type_name).schema["fields"] if f["name"] == field_name)
        assert field["type"]["type"] == "enum"
        assert field["type"]["symbols"] == [member.name for member in enum_cls]


def test_no_float_or_double_anywhere_money_is_minor_units() -> None:
    for source in discover().sources:
        assert '"float"' not in source.text and '"double"' not in source.text, source.location


@pytest.mark.parametrize("entry", default_catalog().entries(), ids=lambda entry: entry.ce_type)
def test_fingerprint_is_crc64_avro_of_the_canonical_form_little_endian(entry) -> None:
    canonical = to_parsing_canonical_form(entry.schema)
    # [PRIMITIVES] and [STRIP]: {"type": "long", "logicalType": ...} becomes "long", as in Java. (The avro package's
    # Schema.canonical_form keeps {"type":"long"}, so its fingerprint() disagrees with Java for logical types.)
    assert "logicalType" not in canonical and '{"type":"long"}' not in canonical
    assert canonical.startswith(f'{{"name":"{entry.full_name}","type":"record","fields":[')

    assert entry.fingerprint == crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")
    assert entry.header == b"\xc3\x01" + entry.fingerprint
    assert default_catalog().by_fingerprint(entry.fingerprint) is entry


def test_fingerprint_matches_the_java_reference_value() -> None:
    """SchemaNormalization.parsingFingerprint64 of "null" in Java is 7195948357588979594; written little-endian."""
    assert int.from_bytes(fingerprint_of("null"), "little") == 7195948357588979594
    assert crc64_avro(b'"null"') == 7195948357588979594


def test_lookups() -> None:
    catalog = default_catalog()

    assert catalog.newest("OrderPlaced").version == 2
    assert [entry.version for entry in catalog.versions("OrderPlaced")] == [1, 2]
    assert catalog.version("OrderPlaced", 1).ce_type == "orderstream.orders.OrderPlaced.v1"
    assert catalog.newest("Reply").full_name == "orderstream.replies.Reply"
    assert catalog.by_fingerprint(bytes(8)) is None
    assert "OrderPlaced" in catalog and "Nope" not in catalog
    with pytest.raises(KeyError):
        catalog.version("OrderPlaced", 3)
    with pytest.raises(KeyError):
        catalog.newest("Nope")


def test_catalog_from_a_copied_directory_equals_the_package(tmp_path: Path) -> None:
    shutil.copytree(str(package_root()), tmp_path / "avro")

    copy = SchemaCatalog.from_directory(tmp_path / "avro")

    assert [(e.ce_type, e.fingerprint) for e in copy.entries()] == [
        (e.ce_type, e.fingerprint) for e in default_catalog().entries()
    ]


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "avro"
    shutil.copytree(str(package_root()), root)
    return root


def test_a_doc_only_new_version_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    definition = json.loads((root / "orders/OrderConfirmed.v1.avsc").read_text())
    definition["doc"] = "reworded"
    (root / "orders/OrderConfirmed.v2.avsc").write_text(json.dumps(definition))

    with pytest.raises(CatalogError, match="same canonical form"):
        SchemaCatalog.from_directory(root)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("orders/OrderConfirmed.v3.avsc", None, r"OrderConfirmed: versions must be 1\.\.N"),
        ("orders/OrderConfirmed.avsc", None, "file name is not"),
        ("orders/OrderConfirmed.v2.avsc", "{not json", "not a readable JSON file"),
        ("orders/Renamed.v1.avsc", None, "does not match the file name"),
        ("orders/OrderConfirmed.v2.avsc", '{"type": "enum", "name": "X", "symbols": ["A"]}', "must be a record"),
        ("payments/OrderConfirmed.v2.avsc", None, "should be 'orderstream.payments' \\(its folder\\)"),
    ],
)
def test_a_bad_layout_is_refused_naming_the_file(tmp_path: Path, file: str, content: str | None, message: str) -> None:
    root = _copy(tmp_path)
    text = (root / "orders/OrderConfirmed.v1.avsc").read_text() if content is None else content
    (root / file).write_text(text)

    with pytest.raises(CatalogError, match=message):
        SchemaCatalog.from_directory(root)


def test_versions_of_one_type_in_two_folders_are_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    definition = json.loads((root / "orders/OrderConfirmed.v1.avsc").read_text())
    definition["namespace"] = "orderstream.payments"
    (root / "payments/OrderConfirmed.v2.avsc").write_text(json.dumps(definition))

    with pytest.raises(CatalogError, match="OrderConfirmed: versions are split across folders"):
        SchemaCatalog.from_directory(root)


def test_an_invalid_avro_schema_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    bad = {
        "type": "record",
        "name": "OrderConfirmed",
        "namespace": "orderstream.orders",
        "fields": [{"name": "a", "type": "no-such-type"}],
    }
    (root / "orders/OrderConfirmed.v2.avsc").write_text(json.dumps(bad))

    with pytest.raises(CatalogError, match=r"OrderConfirmed\.v2\.avsc: not a valid Avro schema"):
        SchemaCatalog.from_directory(root)
