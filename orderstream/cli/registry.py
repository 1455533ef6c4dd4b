"""`orderstream registry start|stop|status`: a local Apicurio schema registry (Confluent-compatible API)."""

from __future__ import annotations

from typing import Annotated

import typer

from orderstream.cli.common import fail, print_json, settings_of

app = typer.Typer(no_args_is_help=True)


@app.command()
def start(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8081).", show_default=False)] = None,
    heap: Annotated[str | None, typer.Option(help="Java max heap, e.g. 256m.", show_default=False)] = None,
) -> None:
    """Fetch Apicurio Registry with Maven (once) and start it in the background under a Java 21+.

    Its schemas live in a Kafka topic of the configured cluster (KafkaSQL storage), so they survive a restart. Returns
    once it answers; then set ORDERSTREAM_SCHEMA_REGISTRY_URL to the URL it prints.
    """
    from orderstream.broker.errors import BrokerError
    from orderstream.broker.registry import local_registry
    from orderstream.cli.common import require_broker
    from orderstream.config import with_overrides

    settings = with_overrides(settings_of(ctx), registry_port=port, registry_heap=heap)
    require_broker(settings)
    registry = local_registry(settings)
    try:
        if registry.start(echo=lambda line: typer.echo(line, err=True)):
            typer.echo(f"registry started at {registry.spec.url} (pid {registry.pid()}, log {registry.log_file})")
        else:
            typer.echo(f"registry already running at {registry.spec.url} (pid {registry.pid()})")
    except BrokerError as exc:
        fail(str(exc))
    typer.echo(f"export ORDERSTREAM_SCHEMA_REGISTRY_URL={registry.spec.url}")


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the registry that `registry start` started (by its pid file)."""
    from orderstream.broker.registry import local_registry

    if local_registry(settings_of(ctx)).stop():
        typer.echo("registry stopped")
    else:
        typer.echo("no registry started by orderstream is running here")


@app.command()
def status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Whether a registry answers (schema_registry_url, else the local one): its name, version and subjects."""
    from orderstream.broker.registry import base_url_of, local_registry, registry_version

    settings = settings_of(ctx)
    registry = local_registry(settings)
    url = settings.schema_registry_url or registry.spec.url
    info = registry_version(base_url_of(url))
    if info is None:
        fail(f"no Apicurio registry answers at {base_url_of(url)}: start one with `orderstream registry start`")
    subjects = _subjects(settings, url)
    pid = registry.pid()
    if json_output:
        print_json({"url": url, "name": info.get("name"), "version": info.get("version"), "subjects": subjects,
                    "local_pid": pid})  # fmt: skip
        return
    typer.echo(f"{info.get('name', 'registry')} version {info.get('version')} answering at {url}")
    typer.echo(f"subjects: {len(subjects)}" if subjects is not None else "subjects: unknown (the API refused)")
    if pid:
        typer.echo(f"started by orderstream: pid {pid}, log {registry.log_file}")


def _subjects(settings, url: str) -> list[str] | None:
    from orderstream.schemas.confluent import registry_client

    client = registry_client(
        url,
        username=settings.schema_registry_username,
        password=settings.schema_registry_password,
        token=settings.schema_registry_token,
        timeout_s=settings.schema_registry_timeout_s,
    )
    try:
        return sorted(client.get_subjects())
    except Exception:  # noqa: BLE001 - status reports what it can
        return None
