"""`orderstream demo`: the whole pipeline on embedded defaults, from a cold start."""

from __future__ import annotations

import typer

from orderstream.cli.common import fail, settings_of


def demo(ctx: typer.Context) -> None:
    """Start the local broker if none answers, create the topics, and run the pipeline end to end."""
    from orderstream.broker.errors import BrokerError
    from orderstream.broker.local import local_broker
    from orderstream.broker.probe import broker_answers
    from orderstream.broker.topics import TopicsError, ensure_topics

    settings = settings_of(ctx)
    if not broker_answers(settings.effective_bootstrap):
        if not settings.uses_local_broker:
            fail(f"no broker answers at {settings.bootstrap_servers}")
        try:
            local_broker(settings).start(echo=lambda line: typer.echo(line, err=True))
        except BrokerError as exc:
            fail(str(exc))
        typer.echo(f"started the local broker at {settings.effective_bootstrap}")
    try:
        created = ensure_topics(settings)
    except TopicsError as exc:
        fail(f"topics exist with the wrong settings: {exc}")
    typer.echo(f"{len(created)} topics ready")
    from orderstream.demo import run_demo

    run_demo(settings, echo=typer.echo)
