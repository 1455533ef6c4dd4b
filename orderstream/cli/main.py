"""The composition of the CLI: the root options and every command group, joined with add_typer.

Each group lives in its own module and imports its heavy libraries inside its commands, so `--help` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from orderstream.cli import broker, demo, dlq, generate, orders, query, run, schemas, status, tail, topics
from orderstream.cli import shipping, stock
from orderstream.cli import replay  # issue 6
from orderstream.cli.common import GlobalOptions

app = typer.Typer(
    name="orderstream",
    help="An event-sourced order pipeline on Apache Kafka: every order change is an event, every view a projection.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path], typer.Option("--config", "-c", help="TOML settings file (default: ./orderstream.toml if present).")
    ] = None,
    bootstrap_servers: Annotated[
        Optional[str],
        typer.Option("--bootstrap-servers", "-b", help="Kafka host:port list; default: the local broker.", show_default=False),
    ] = None,
    data_dir: Annotated[
        Optional[Path], typer.Option("--data-dir", help="Where broker data, views and caches live (default .orderstream).")
    ] = None,
    topic_prefix: Annotated[
        Optional[str], typer.Option("--topic-prefix", help="Prefix for every topic name (isolates environments).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the Kafka client's own warnings.")] = False,
) -> None:
    """Settings come from these options, then ORDERSTREAM_* variables, then the TOML file, then defaults."""
    import logging

    # The client retries transient conditions (coordinator loading, a broker restarting) by itself, and the commands
    # report what is fatal in one line of their own; its log lines are noise on a command line unless asked for.
    logging.getLogger("librdkafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    ctx.obj = GlobalOptions(
        config_file=config,
        overrides={"bootstrap_servers": bootstrap_servers, "data_dir": data_dir, "topic_prefix": topic_prefix},
    )


app.add_typer(broker.app, name="broker", help="Start, stop and inspect the local Apache Kafka broker (KRaft).")
app.add_typer(topics.app, name="topics", help="Create and verify every topic of the pipeline.")
app.add_typer(schemas.app, name="schemas", help="List the wire contract's Avro schemas and check their compatibility.")
app.add_typer(query.app, name="query", help="Ask the read models: one order, order lists, sales (with --after for read-your-writes).")
app.add_typer(replay.app, name="replay", help="Rebuild a projection next to the live one and swap it in; copy a topic's events.")
app.add_typer(dlq.app, name="dlq", help="Dead letters: list, show and retry records that failed.")
app.add_typer(stock.app, name="stock", help="Inventory commands: add units of a SKU to stock.")
app.command(name="run")(run.run)
app.command(name="place")(orders.place)
app.command(name="cancel")(orders.cancel)
app.command(name="ship")(shipping.ship)
app.command(name="deliver")(shipping.deliver)
app.command(name="generate")(generate.generate)
app.command(name="tail")(tail.tail)
app.command(name="status")(status.status)
app.command(name="demo")(demo.demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
