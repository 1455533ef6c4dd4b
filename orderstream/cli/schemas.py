"""`orderstream schemas list|check|register`: the wire contract's schemas, their fingerprints and their compatibility,
and the schema registry that holds them in registry mode."""

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
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="A folder of <group>/<Type>.v<N>.avsc files (default: the packaged schemas)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")] = False,
    registry: Annotated[
        bool, typer.Option("--registry", help="Compare the catalog with the schema registry (schema_registry_url).")
    ] = False,
) -> None:
    """Check consecutive versions of every type in both directions (new reads old, old reads new); exit 1 if not.

    With --registry: whether the registry holds every version of every type, no other, at FULL_TRANSITIVE."""
    from orderstream.schemas.compatibility import check

    if directory is not None and not directory.is_dir():
        fail(f"{directory} is not a directory")
    if registry:
        _check_registry(ctx, directory, as_json)
        return
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


@app.command("register")
def register(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="A folder of <group>/<Type>.v<N>.avsc files (default: the packaged schemas)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")] = False,
) -> None:
    """Push every schema version, oldest first, to the schema registry (schema_registry_url), one subject per type
    (its full record name) set to FULL_TRANSITIVE. A version the registry refuses stops it: one line, exit 1."""
    from orderstream.schemas.errors import RegistryError
    from orderstream.schemas.registry_sync import register_all

    client, catalog, definitions = _registry_and_catalog(ctx, directory)
    say = (lambda _: None) if as_json else (lambda r: typer.echo(f"{r.subject} v{r.version}: id {r.schema_id}"))
    try:
        done = register_all(client, catalog, definitions, on_registered=say)
    except RegistryError as exc:
        fail(str(exc))
    if as_json:
        print_json([{"subject": r.subject, "version": r.version, "id": r.schema_id} for r in done])
    else:
        typer.echo(f"registered {len(done)} schema version(s) of {len(catalog.type_names())} subject(s)")


def _registry_and_catalog(ctx: typer.Context, directory: Path | None):
    from orderstream.cli.common import settings_of
    from orderstream.schemas.catalog import SchemaCatalog, default_catalog
    from orderstream.schemas.confluent import definition_text, package_definitions, registry_client
    from orderstream.schemas.errors import CatalogError
    from orderstream.schemas.sources import discover

    settings = settings_of(ctx)
    if not settings.schema_registry_url:
        fail("no schema registry configured: set ORDERSTREAM_SCHEMA_REGISTRY_URL (see `orderstream registry start`)")
    if directory is not None and not directory.is_dir():
        fail(f"{directory} is not a directory")
    try:
        catalog = SchemaCatalog.from_directory(directory) if directory is not None else default_catalog()
    except CatalogError as exc:
        fail(f"the schemas do not load: {exc}")
    if directory is None:
        definitions = package_definitions()
    else:
        definitions = {source.location: definition_text(source.definition) for source in discover(directory).sources}
    client = registry_client(
        settings.schema_registry_url,
        username=settings.schema_registry_username,
        password=settings.schema_registry_password,
        token=settings.schema_registry_token,
        timeout_s=settings.schema_registry_timeout_s,
    )
    return client, catalog, definitions


def _check_registry(ctx: typer.Context, directory: Path | None, as_json: bool) -> None:
    from orderstream.schemas.errors import RegistryError
    from orderstream.schemas.registry_sync import compare

    client, catalog, definitions = _registry_and_catalog(ctx, directory)
    try:
        problems = compare(client, catalog, definitions)
    except RegistryError as exc:
        fail(str(exc))
    if as_json:
        print_json({"ok": not problems, "problems": problems, "schemas": len(catalog)})
    elif not problems:
        typer.echo(f"OK: the registry holds all {len(catalog)} schema versions, every subject FULL_TRANSITIVE")
    else:
        typer.echo(f"{len(problems)} difference(s) between the catalog and the registry:")
        for problem in problems:
            typer.echo(f"  - {problem}")
    if problems:
        fail(f"registry check failed: {len(problems)} difference(s)")
