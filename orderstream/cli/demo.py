"""`orderstream demo`: the whole pipeline on embedded defaults, from a cold start."""

from __future__ import annotations

from typing import Annotated

import typer

from orderstream.cli.common import fail, settings_of


def demo(
    ctx: typer.Context,
    orders: Annotated[int, typer.Option("--orders", "-n", min=1, max=1_000_000, help="Orders to place.")] = 3000,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the generated load (default: random).", show_default=False)
    ] = None,
) -> None:
    """Start the local broker if none answers, create the topics, run every service and projection, restock, place
    a few thousand orders, ship, deliver and cancel some, wait until every view has caught up, and show the views."""
    from orderstream.broker.errors import BrokerError
    from orderstream.broker.local import local_broker
    from orderstream.broker.probe import broker_answers
    from orderstream.cli.run import root_args
    from orderstream.demo import DemoError, DemoPlan, run_demo
    from orderstream.kafka.topics import TopicsError, ensure_topics

    settings = settings_of(ctx)
    if not broker_answers(settings.effective_bootstrap):
        if not settings.uses_local_broker:
            fail(f"no broker answers at {settings.bootstrap_servers}")
        try:
            local_broker(settings).start(echo=lambda line: typer.echo(line, err=True))
        except BrokerError as exc:
            fail(str(exc))
        typer.echo(
            f"started the local Apache Kafka broker at {settings.effective_bootstrap} "
            "(`orderstream broker stop` stops it)"
        )
    try:
        created = ensure_topics(settings)
    except TopicsError as exc:
        fail(f"topics exist with the wrong settings: {exc}")
    typer.echo(f"{len(created)} topics ready")
    try:
        run_demo(settings, root_args(ctx), DemoPlan(orders=orders, seed=seed), echo=typer.echo)
    except DemoError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted: the services it started were stopped", err=True)
        raise typer.Exit(code=130) from None
