"""`orderstream serve`: the HTTP API (FastAPI on uvicorn). Stateless: run several on one PostgreSQL view database
behind a load balancer and they answer the same (a read-your-writes token from one is honoured by another)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from orderstream.cli.common import fail, settings_of


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: the api_host setting, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: the api_port setting, 8080).", min=1, max=65535)
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.", min=1, max=64)] = 1,
) -> None:
    """Serve the HTTP API: commands, read models, live order events, /docs. A non-loopback --host needs api_token."""
    import uvicorn

    from orderstream.api.serving import UnsafeBind, check_bind

    settings = settings_of(ctx)
    host = settings.api_host if host is None else host
    port = settings.api_port if port is None else port
    try:
        check_bind(host, settings)
    except UnsafeBind as exc:
        fail(str(exc))
    _hand_settings_to_workers(ctx)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"orderstream API on http://{shown}:{port} (docs at /docs"
        + (", bearer token required)" if settings.api_token is not None else ")"),
        err=True,
    )
    uvicorn.run(
        "orderstream.api.serving:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        server_header=False,
    )


def _hand_settings_to_workers(ctx: typer.Context) -> None:
    """The root options (-b, --data-dir, --topic-prefix, -c) as the variables load_settings reads, for the app
    factory in this process and in uvicorn's worker processes."""
    options = ctx.find_root().obj
    if options is None:
        return
    if options.config_file is not None:
        os.environ["ORDERSTREAM_CONFIG"] = str(options.config_file)
    for key, value in options.overrides.items():
        if value is not None:
            os.environ[f"ORDERSTREAM_{key.upper()}"] = str(value)
