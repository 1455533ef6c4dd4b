"""`orderstream topics init`: create or verify every topic of the pipeline (idempotent)."""

from __future__ import annotations

from typing import Annotated

import typer

from orderstream.cli.common import console, fail, print_json, settings_of

app = typer.Typer(no_args_is_help=True)


@app.command()
def init(
    ctx: typer.Context,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions per topic (default 6).", show_default=False)
    ] = None,
    replication_factor: Annotated[
        int | None, typer.Option(help="Replicas per partition (default 1).", show_default=False)
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create every topic the pipeline uses; verify the ones that exist (a wrong partition count or replication
    factor is an error)."""
    from confluent_kafka import KafkaException

    from orderstream.broker.probe import ClusterUnreachable, check_connection
    from orderstream.kafka.clients import common_config
    from orderstream.kafka.topics import TopicsError, ensure_topics

    settings = _with_options(settings_of(ctx), partitions=partitions, replication_factor=replication_factor)
    try:
        check_connection(common_config(settings), timeout_s=10)
        statuses = ensure_topics(settings)
    except ClusterUnreachable as exc:
        fail(str(exc))
    except TopicsError as exc:
        statuses = exc.statuses
    except KafkaException as exc:
        fail(f"cannot manage topics at {settings.effective_bootstrap}: {exc.args[0].str()}")
    if json_output:
        print_json([s.__dict__ for s in statuses])
    else:
        from rich.table import Table

        table = Table("topic", "state", "partitions", "detail")
        for s in statuses:
            style = {"created": "green", "ok": "", "mismatch": "bold red"}[s.state]
            table.add_row(s.name, f"[{style}]{s.state}[/]" if style else s.state, str(s.partitions), s.detail)
        console().print(table)
    bad = [s for s in statuses if s.state == "mismatch"]
    if bad:
        fail(
            f"{len(bad)} topic(s) exist with the wrong settings ({bad[0].name}: {bad[0].detail}); "
            "recreate them or change the settings"
        )


def _with_options(settings, **options: int | None):
    """The settings with the given options, checked by the Settings model: 0 is a value to refuse, not to drop (it
    used to be, silently), and a negative count reached the AdminClient, which raised."""
    from orderstream.config import ConfigError, with_overrides

    try:
        return with_overrides(settings, **options)
    except ConfigError as exc:
        if exc.setting not in options:
            fail(str(exc))
        reason = (exc.reason or "").removeprefix("Input should be ")
        fail(f"--{exc.setting.replace('_', '-')} {options[exc.setting]} is not allowed: it should be {reason}")
