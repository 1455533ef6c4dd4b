"""`schemas check` logic: every consecutive pair of versions, both directions, on the package or any directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from orderstream.schemas.catalog import default_catalog
from orderstream.schemas.compatibility import NEW_READS_OLD, OLD_READS_NEW, Problem, check
from orderstream.schemas.sources import package_root


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A writable copy of the packaged schemas."""
    root = tmp_path / "avro"
    shutil.copytree(str(package_root()), root)
    return root


def load(root: Path, location: str) -> dict[str, Any]:
    return json.loads((root / location).read_text())


def save(root: Path, location: str, definition: dict[str, Any]) -> None:
    (root / location).write_text(json.dumps(definition, indent=2))


def field(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in definition["fields"] if f["name"] == name)


def test_the_packaged_schemas_pass() -> None:
    report = check()

    assert report.ok, [str(problem) for problem in report.problems]
    assert report.pairs == 1  # OrderPlaced v1 -> v2
    shipped = default_catalog().entries()  # one schema per type and version, as pinned in test_codec_golden
    assert report.types == len({entry.type_name for entry in shipped})
    assert report.schemas == len(shipped)


def test_the_order_placed_v2_evolution_is_compatible_both_ways(schemas: Path) -> None:
    report = check(schemas)

    assert report.ok
    assert report.pairs == 1


def test_a_new_required_field_without_default_fails_naming_type_versions_and_field(schemas: Path) -> None:
    v3 = load(schemas, "orders/OrderPlaced.v2.avsc")
    v3["fields"].append({"name": "priority", "type": "long"})
    save(schemas, "orders/OrderPlaced.v3.avsc", v3)

    report = check(schemas)

    assert not report.ok
    assert report.problems == (
        Problem(
            type_name="OrderPlaced",
            direction=NEW_READS_OLD,
            reason="required by the reader, absent from the writer, with no default",
            old_version=2,
            new_version=3,
            field="priority",
        ),
    )
    assert str(report.problems[0]) == (
        "OrderPlaced v3 reading v2 (new reads old), field priority: "
        "required by the reader, absent from the writer, with no default"
    )


def test_a_removed_field_without_default_breaks_old_readers(schemas: Path) -> None:
    v2 = load(schemas, "orders/OrderCancelled.v1.avsc")
    v2["fields"] = [f for f in v2["fields"] if f["name"] != "reason"]
    save(schemas, "orders/OrderCancelled.v2.avsc", v2)

    (problem,) = check(schemas).problems

    assert (problem.type_name, problem.direction, problem.field) == ("OrderCancelled", OLD_READS_NEW, "reason")
    assert (problem.old_version, problem.new_version) == (1, 2)


def test_a_new_enum_symbol_is_flagged_for_old_readers(schemas: Path) -> None:
    v2 = load(schemas, "orders/OrderPaymentUpdated.v1.avsc")
    field(v2, "payment_status")["type"]["symbols"].append("CHARGED_BACK")
    save(schemas, "orders/OrderPaymentUpdated.v2.avsc", v2)

    (problem,) = check(schemas).problems

    assert problem.type_name == "OrderPaymentUpdated"
    assert (problem.direction, problem.field) == (OLD_READS_NEW, "payment_status")
    assert "CHARGED_BACK" in problem.reason and "enum" in problem.reason


def test_a_new_enum_symbol_is_fine_when_the_old_enum_has_a_default(schemas: Path) -> None:
    v1 = load(schemas, "orders/OrderPaymentUpdated.v1.avsc")
    field(v1, "payment_status")["type"]["default"] = "PENDING"
    save(schemas, "orders/OrderPaymentUpdated.v1.avsc", v1)
    field(v1, "payment_status")["type"]["symbols"].append("CHARGED_BACK")
    save(schemas, "orders/OrderPaymentUpdated.v2.avsc", v1)

    assert check(schemas).ok


def test_a_removed_enum_symbol_breaks_new_readers(schemas: Path) -> None:
    v2 = load(schemas, "orders/OrderLineReservationUpdated.v1.avsc")
    field(v2, "reservation_status")["type"]["symbols"].remove("RELEASED")
    save(schemas, "orders/OrderLineReservationUpdated.v2.avsc", v2)

    (problem,) = check(schemas).problems

    assert (problem.direction, problem.field, problem.new_version) == (NEW_READS_OLD, "reservation_status", 2)


def test_a_type_change_inside_the_nested_order_line_names_the_nested_field(schemas: Path) -> None:
    v3 = load(schemas, "orders/OrderPlaced.v2.avsc")
    field(field(v3, "lines")["type"]["items"], "quantity")["type"] = "string"
    save(schemas, "orders/OrderPlaced.v3.avsc", v3)

    problems = check(schemas).problems

    assert {(p.direction, p.field) for p in problems} == {
        (NEW_READS_OLD, "lines[].quantity"),
        (OLD_READS_NEW, "lines[].quantity"),
    }
    assert all((p.old_version, p.new_version) == (2, 3) for p in problems)


def test_a_widening_promotion_is_one_way(schemas: Path) -> None:
    v2 = load(schemas, "inventory/StockAdded.v1.avsc")
    field(v2, "quantity")["type"] = "double"
    save(schemas, "inventory/StockAdded.v2.avsc", v2)

    (problem,) = check(schemas).problems

    assert (problem.direction, problem.field) == (OLD_READS_NEW, "quantity")
    assert "double" in problem.reason


def test_layout_problems_are_reported_not_raised(schemas: Path) -> None:
    (schemas / "orders/OrderConfirmed.v3.avsc").write_text((schemas / "orders/OrderConfirmed.v1.avsc").read_text())
    (schemas / "orders/bad-name.avsc").write_text("{}")

    report = check(schemas)

    assert not report.ok
    messages = [str(problem) for problem in report.problems]
    assert any("OrderConfirmed" in m and "1..N" in m for m in messages), messages
    assert any("bad-name.avsc: file name is not" in m for m in messages), messages


def test_a_missing_directory_is_a_problem(tmp_path: Path) -> None:
    report = check(tmp_path / "nope")

    assert not report.ok
    assert "is not a directory" in report.problems[0].reason


def test_report_as_json() -> None:
    document = check().to_json()

    assert document["ok"] is True
    assert document["problems"] == []
    assert json.loads(json.dumps(document)) == document
