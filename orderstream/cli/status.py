"""`orderstream status`: lag, last event age and state of every service and projection; broker and topic health."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from orderstream.cli.common import console, fail, id_column, print_json, require_broker, settings_of


def status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    sample: Annotated[
        float, typer.Option(help="Seconds (> 0) to watch a consumer that is behind, to tell catching-up from stuck.")
    ] = 1.5,
) -> None:
    """Per service and projection and partition: lag (the records still to process: transaction markers and aborted
    records do not count), the lag Kafka's own kafka-consumer-groups shows and why it differs, age of the last event
    applied, running or not, its state (idle, catching-up, stuck or stopped), and how many members its group has."""
    from orderstream.ops.status import StatusUnavailable, collect_status
    from orderstream.services.composition import watched_consumers

    if not math.isfinite(sample) or sample <= 0:  # 0 would skip the sample, so every consumer behind reads "stuck"
        fail(f"--sample must be a number of seconds greater than 0 (e.g. 1.5), got {sample:g}")
    settings = settings_of(ctx)
    require_broker(settings)
    try:
        report = collect_status(settings, watched_consumers(settings), sample_s=sample)
    except StatusUnavailable as exc:
        fail(str(exc))
    if json_output:
        print_json(report.as_json())
        return
    from rich.table import Table

    title = f"topic prefix {settings.topic_prefix!r}" if settings.topic_prefix else None
    table = Table(
        id_column("consumer"),
        id_column("topic"),
        "part",
        "position",
        "end",
        "lag",
        "kafka lag",
        "last event",
        "state",
        "members",
        "kafka lag differs by",
        title=title,
    )
    colors = {"idle": "green", "catching-up": "yellow", "stuck": "bold red", "stopped": "dim"}
    for row in report.consumers:
        age = "-" if row.last_event_age_s is None else f"{row.last_event_age_s:.1f}s"
        table.add_row(
            row.name,
            row.topic.removeprefix(settings.topic_prefix),
            str(row.partition),
            "-" if row.position is None else str(row.position),
            str(row.end),
            str(row.lag),
            "-" if row.kafka_lag is None else str(row.kafka_lag),
            age,
            f"[{colors[row.state]}]{row.state}[/]",
            str(row.members),
            row.lag_note,
        )
    out = console()
    out.print(table)
    unhealthy = [t for t in report.topics if t["health"] != "ok"]
    broker = report.broker
    out.print(
        f"broker {broker['bootstrap']}: nodes {broker['nodes']}, controller {broker['controller']}; "
        f"{len(report.topics) - len(unhealthy)}/{len(report.topics)} topics healthy"
        + ("".join(f"\n  {t['topic']}: {t['health']}" for t in unhealthy))
    )
