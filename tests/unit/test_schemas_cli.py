"""`orderstream schemas list|check`, through typer's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from orderstream.cli.schemas import app
from orderstream.schemas.catalog import default_catalog
from orderstream.schemas.sources import package_root

runner = CliRunner()


def test_list_json_prints_every_schema_and_only_json() -> None:
    result = runner.invoke(app, ["list", "--json"])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == len(default_catalog())
    placed = {row["version"]: row for row in rows if row["type"] == "OrderPlaced"}
    assert placed[2] == {
        "type": "OrderPlaced",
        "version": 2,
        "group": "orders",
        "ce_type": "orderstream.orders.OrderPlaced.v2",
        "fingerprint": default_catalog().version("OrderPlaced", 2).fingerprint.hex(),
        "newest": True,
    }
    assert placed[1]["newest"] is False


def test_list_as_a_table() -> None:
    result = runner.invoke(app, ["list"])

    assert result.exit_code == 0, result.output
    assert "OrderPlaced" in result.stdout
    assert default_catalog().version("OrderPlaced", 1).fingerprint_hex in result.stdout


def test_check_passes_on_the_packaged_schemas() -> None:
    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    shipped = default_catalog().entries()
    types = {entry.type_name for entry in shipped}
    assert result.stdout.startswith(
        f"OK: {len(shipped)} schemas of {len(types)} types, 1 version pair(s) compatible in both directions"
    )


def test_check_json_on_the_packaged_schemas() -> None:
    result = runner.invoke(app, ["check", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def _incompatible_copy(tmp_path: Path) -> Path:
    root = tmp_path / "avro"
    shutil.copytree(str(package_root()), root)
    v3 = json.loads((root / "orders/OrderPlaced.v2.avsc").read_text())
    v3["fields"].append({"name": "priority", "type": "long"})
    (root / "orders/OrderPlaced.v3.avsc").write_text(json.dumps(v3))
    return root


def test_check_fails_on_an_incompatible_directory_with_a_readable_report(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "--dir", str(_incompatible_copy(tmp_path))])

    assert result.exit_code == 1
    assert "OrderPlaced v3 reading v2 (new reads old), field priority" in result.stdout
    assert result.stderr.strip() == "error: schema check failed: 1 problem(s)"


def test_check_json_fails_with_json_only_on_stdout(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "--dir", str(_incompatible_copy(tmp_path)), "--json"])

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    (problem,) = document["problems"]
    assert (problem["type_name"], problem["old_version"], problem["new_version"], problem["field"]) == (
        "OrderPlaced",
        2,
        3,
        "priority",
    )
    assert problem["direction"] == "new reads old"


def test_check_of_a_missing_directory_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "--dir", str(tmp_path / "nope")])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'} is not a directory"
