"""The composition of the CLI: the root options and every command group, joined with add_typer.

Each group lives in its own module and imports its heavy libraries inside its commands, so `--help` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from orderstream.cli import (broker, demo, dlq, generate, orders, query, replay, run, schemas, shipping, status, stock,
                             tail, topics)
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

    from orderstream.process_tuning import tune_collector

    tune_collector()
    # The client retries transient conditions (coordinator loading, a broker restarting) by itself, and the commands
    # report what is fatal in one line of their own; its log lines are noise on a command line unless asked for.
    logging.getLogger("librdkafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    ctx.obj = GlobalOptions(
        config_file=config,
        overrides={"bootstrap_servers": bootstrap_servers, "data_dir": data_dir, "topic_prefix": topic_prefix},
    )


SETUP, WRITE, READ, OPERATE = "Set up", "Write (commands)", "Read (projections)", "Operate"

app.command(name="demo", rich_help_panel=SETUP)(demo.demo)
app.add_typer(broker.app, name="broker", rich_help_panel=SETUP,
              help="Start, stop and inspect the local Apache Kafka broker (KRaft).")
app.add_typer(topics.app, name="topics", rich_help_panel=SETUP, help="Create and verify every topic of the pipeline.")
app.command(name="run", rich_help_panel=SETUP)(run.run)

app.command(name="place", rich_help_panel=WRITE)(orders.place)
app.command(name="cancel", rich_help_panel=WRITE)(orders.cancel)
app.add_typer(stock.app, name="stock", rich_help_panel=WRITE, help="Inventory commands: add units of a SKU to stock.")
app.command(name="ship", rich_help_panel=WRITE)(shipping.ship)
app.command(name="deliver", rich_help_panel=WRITE)(shipping.deliver)
app.command(name="generate", rich_help_panel=WRITE)(generate.generate)

app.add_typer(query.app, name="query", rich_help_panel=READ,
              help="Ask the read models: orders, sales, stock, customers (--after for read-your-writes, --as-of for the past).")
app.add_typer(replay.app, name="replay", rich_help_panel=READ,
              help="Rebuild a projection next to the live one and swap it in; copy a topic's events.")
app.command(name="tail", rich_help_panel=READ)(tail.tail)

app.command(name="status", rich_help_panel=OPERATE)(status.status)
app.add_typer(dlq.app, name="dlq", rich_help_panel=OPERATE, help="Dead letters: list, show and retry records that failed.")
app.add_typer(schemas.app, name="schemas", rich_help_panel=OPERATE,
              help="List the wire contract's Avro schemas and check their compatibility.")

def main() -> None:
    app()


if __name__ == "__main__":
    main()
