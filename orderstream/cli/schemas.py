"""`orderstream schemas list|check`: the wire contract's schemas, their fingerprints and their compatibility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orderstream.cli.common import console, fail, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_schemas(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")] = False,
) -> None:
    """Every message type and schema version, with its wire fingerprint (--json adds its CloudEvents type)."""
    from orderstream.schemas.catalog import SchemaCatalog
    from orderstream.schemas.errors import CatalogError

    try:
        catalog = SchemaCatalog.from_directory()
    except CatalogError as exc:
        fail(f"the packaged schemas do not load: {exc}")
    rows = [
        {
            "type": entry.type_name,
            "version": entry.version,
            "group": entry.group,
            "ce_type": entry.ce_type,
            "fingerprint": entry.fingerprint_hex,
            "newest": entry is catalog.newest(entry.type_name),
        }
        for entry in catalog.entries()
    ]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(caption="fingerprint: CRC-64-AVRO, wire byte order (little-endian)")
    table.add_column("group")
    table.add_column("type", no_wrap=True)
    table.add_column("version", justify="right")
    table.add_column("fingerprint", no_wrap=True)
    table.add_column("newest")
    for row in rows:
        newest = "yes" if row["newest"] else ""
        table.add_row(row["group"], row["type"], f"v{row['version']}", row["fingerprint"], newest)
    console().print(table)


@app.command("check")
def check_schemas(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="A folder of <group>/<Type>.v<N>.avsc files (default: the packaged schemas)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")] = False,
) -> None:
    """Check consecutive versions of every type in both directions (new reads old, old reads new); exit 1 if not."""
    from orderstream.schemas.compatibility import check

    if directory is not None and not directory.is_dir():
        fail(f"{directory} is not a directory")
    report = check(directory)
    if report.ok and not report.schemas:  # nothing found is not "all compatible": most likely the wrong folder
        fail(
            f"no schemas in {report.root}: expected files laid out as <group>/<Type>.v<N>.avsc "
            "(e.g. orders/OrderPlaced.v1.avsc)"
        )
    if as_json:
        print_json(report.to_json())
    elif report.ok:
        typer.echo(
            f"OK: {report.schemas} schemas of {report.types} types, "
            f"{report.pairs} version pair(s) compatible in both directions ({report.root})"
        )
    else:
        typer.echo(f"{len(report.problems)} problem(s) in {report.root}:")
        for problem in report.problems:
            typer.echo(f"  - {problem}")
    if not report.ok:
        fail(f"schema check failed: {len(report.problems)} problem(s)")
