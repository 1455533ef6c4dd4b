"""`orderstream tail TOPIC|all`: decode and print events with their headers, as they arrive or from the start."""

from __future__ import annotations

import json
import signal
from typing import Annotated

import typer

from orderstream.cli.common import console, fail, print_json, require_broker, settings_of


def tail(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="A topic name (e.g. orders.events), or `all` for every pipeline topic.")],
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the oldest record.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep waiting for new records (Ctrl-C stops).")
    ] = True,
    correlation: Annotated[
        str | None,
        typer.Option(
            "--correlation",
            help="Only records of this correlation id (one order's whole workflow).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Decode and print records with their CloudEvents headers. Never commits, never disturbs a service."""
    from orderstream.ops.tail import tail as read
    from orderstream.topology import TOPICS, TopicKind

    settings = settings_of(ctx)
    require_broker(settings)  # seconds, not a 10 s metadata wait and a traceback, when no broker answers
    names = [t.name for t in TOPICS if t.kind is not TopicKind.DLQ] if topic == "all" else [topic]
    stopped = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stopped.update(now=True))
    out = console()
    try:
        for record in read(settings, names, from_beginning, follow, correlation, should_stop=lambda: stopped["now"]):
            if json_output:
                print_json(record.as_json())
                continue
            subject = record.headers.get("ce_subject", record.key)
            out.print(
                f"[dim]{record.topic}[{record.partition}]@{record.offset}[/] [bold]{record.type}[/] {subject} "
                f"[dim]corr={record.headers.get('ce_correlationid', '-')} "
                f"cause={record.headers.get('ce_causationid', '-')}[/]",
                highlight=False,
            )
            if record.body is not None:
                out.print("   " + json.dumps(record.body, default=str), highlight=False, soft_wrap=True)
            else:
                out.print(f"   [red]{record.error}[/]", highlight=False)
    except (LookupError, RuntimeError) as exc:  # a missing topic; a record the broker reports an error for
        fail(str(exc))
