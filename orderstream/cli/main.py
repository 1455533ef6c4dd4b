"""The composition of the CLI: the root options and every command group, joined with add_typer.

Each group lives in its own module and imports its heavy libraries inside its commands, so `--help` is instant.
The root command (RootGroup) keeps the CLI's promise for whatever a command lets escape: one line on stderr
(`error: ...`, as fail() prints it), never a traceback; a usage error exits 2 (a number out of its option's bounds: 1,
as any refused value), anything else 1.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer 0.2x ships its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer releases use click itself
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from orderstream.cli import (
    broker,
    demo,
    dlq,
    generate,
    orders,
    query,
    replay,
    returns,
    run,
    schemas,
    security,
    serve,
    shipping,
    status,
    stock,
    tail,
    topics,
)
from orderstream.cli.common import GlobalOptions, fail

PROGRAM = "orderstream"
USAGE_ERROR = 2  # the conventional exit code of a command line that could not be parsed
INVALID = 1  # a well-formed value refused (see cli/common.py for every exit code)
KAFKA_UNREACHABLE = {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_RESOLVE"}
KAFKA_SLOW = {"_TIMED_OUT", "_MSG_TIMED_OUT", "_TIMED_OUT_QUEUE"}
KAFKA_DENIED = {
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
}


class RootGroup(TyperGroup):
    """typer's root group, reporting what escapes a command in one line (typer would print a traceback, or a boxed
    usage panel). typer.Exit (fail()), Abort, Ctrl-C (exit 130) and a closed stdout keep typer's own handling."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:  # the root's own options are parsed here (a subcommand's, inside invoke)
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, EOFError, BrokenPipeError):
            raise
        except UsageError as exc:
            _usage_error(exc)
        except ClickException as exc:
            fail(_one_line(exc.format_message()), exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: reported in one line, never swallowed
            options = ctx.obj if isinstance(ctx.obj, GlobalOptions) else GlobalOptions()
            if options.verbose:
                traceback.print_exception(exc, file=sys.stderr)
            fail(describe_error(exc, options))


def _usage_error(exc: UsageError) -> NoReturn:
    """`error: <what click says>; see `orderstream <command> --help``, exit 2. `orderstream` alone (or a group
    alone) has already printed its help: that stays as it is."""
    if isinstance(exc, NoArgsIsHelpError):
        raise exc
    names, ctx = [], exc.ctx
    while ctx is not None and ctx.parent is not None:  # the command's path below the root, whatever the program's name
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    command = " ".join([PROGRAM, *names])
    code = INVALID if _out_of_range(exc) else USAGE_ERROR
    fail(f"{_one_line(exc.format_message()).rstrip('.')}; see `{command} --help`", code)


# pydantic's error types for a value of the right type outside its parameter's bounds (typer's min=/max=)
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _out_of_range(exc: UsageError) -> bool:
    """A number that parsed but is out of its option's bounds (--limit 0): an invalid value (exit 1), not a usage
    error (exit 2), like every other refused value."""
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
    if not callable(errors):
        return False
    kinds = {error.get("type") for error in errors()}
    return bool(kinds) and kinds <= _RANGE_ERRORS


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe_error(exc: BaseException, options: GlobalOptions) -> str:
    """One line for an error no command reported itself: what failed, where, and what to do about it."""
    kafka = sys.modules.get("confluent_kafka")  # only loaded, so only raised, by a command that used Kafka
    if kafka is not None and isinstance(exc, kafka.KafkaException):
        return _kafka_error(exc, options.bootstrap() or "the configured brokers")
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError):
        return _database_error(exc, sqlalchemy_exc, options)
    if isinstance(exc, OSError):
        if exc.filename:
            return f"cannot use {exc.filename}: {exc.strerror or exc}: check the path, its permissions and free space"
        return f"{type(exc).__name__}: {exc.strerror or exc} (run again with --verbose for the traceback)"
    from orderstream.broker.errors import BrokerError
    from orderstream.broker.probe import ClusterUnreachable
    from orderstream.kafka.clients import KafkaAuthenticationError

    if isinstance(exc, KafkaAuthenticationError):
        return f"{options.bootstrap() or 'the cluster'}: {exc}"
    if isinstance(exc, (ClusterUnreachable, BrokerError)):  # their messages name the broker and what to do
        return _one_line(str(exc))
    return (
        f"unexpected {type(exc).__name__}: {_one_line(str(exc)) or 'no message'} (this is a bug: run again with "
        "--verbose for the traceback and report it)"
    )


def _kafka_error(exc: Any, bootstrap: str) -> str:
    """By the client's error code: no broker at all, a broker too slow to answer, or anything else it refused."""
    error = exc.args[0] if exc.args else None
    name = error.name() if hasattr(error, "name") else ""
    detail = error.str() if hasattr(error, "str") else str(exc)
    if name in KAFKA_UNREACHABLE:
        return (
            f"no broker answers at {bootstrap} ({detail}): start one with `orderstream broker start` "
            "or pass -b/--bootstrap-servers (or set ORDERSTREAM_BOOTSTRAP_SERVERS)"
        )
    if name in KAFKA_DENIED:
        return (
            f"not authorized by the cluster at {bootstrap} ({detail.rstrip('.')}): with ACLs on, only a topic's owner "
            "writes it (`orderstream security acls` lists who owns what): run this with the owner's credentials"
        )
    if name in KAFKA_SLOW:
        return (
            f"the broker at {bootstrap} did not answer in time ({detail}): check it with `orderstream status`, "
            "or pass -b/--bootstrap-servers"
        )
    return f"Kafka error from {bootstrap}: {detail}: `orderstream status` shows the cluster's health"


def _database_error(exc: Any, sqlalchemy_exc: Any, options: GlobalOptions) -> str:
    """An unavailable database (OperationalError: down, unreachable, a file that cannot be opened) says what to
    check, SQLite and a server alike; any other database error is a bug, reported as one."""
    orig = getattr(exc, "orig", None)
    detail = _one_line(str(orig or exc).split("\n")[0])
    settings = options.built_settings()
    if type(orig).__module__.startswith("sqlite3"):
        where = "a projection's SQLite database" + (f" under {settings.data_dir}" if settings is not None else "")
        todo = "check that the directory exists, is writable and has free space"
    else:
        url = settings.database_url if settings is not None else None
        where = f"the database {_masked(url)}" if url else "the database"
        todo = "check database_url and that the database server is running"
    if isinstance(exc, sqlalchemy_exc.OperationalError):
        return f"{where} is unavailable ({detail}): {todo}"
    return f"{where} failed ({detail}) (run again with --verbose for the traceback)"


def _masked(url: str) -> str:
    """The URL without its password (settings are secrets-aware; a URL in an error line must be too)."""
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: name no part of it rather than risk the password
        return "(database_url)"
    return shown.replace("%7B", "{").replace("%7D", "}")  # the {projection} placeholder, as configured


app = typer.Typer(
    name="orderstream",
    help="An event-sourced order pipeline on Apache Kafka: every order change is an event, every view a projection.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=RootGroup,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (default: ./orderstream.toml if present)."),
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers", "-b", help="Kafka host:port list; default: the local broker.", show_default=False
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where broker data, views and caches live (default .orderstream)."),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option("--topic-prefix", help="Prefix for every topic name (isolates environments).")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the Kafka client's own warnings, and an error's traceback.")
    ] = False,
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
        verbose=verbose,
    )


SETUP, WRITE, READ, OPERATE = "Set up", "Write (commands)", "Read (projections)", "Operate"

app.command(name="demo", rich_help_panel=SETUP)(demo.demo)
app.add_typer(
    broker.app,
    name="broker",
    rich_help_panel=SETUP,
    help="Start, stop and inspect the local Apache Kafka broker (KRaft).",
)
app.add_typer(topics.app, name="topics", rich_help_panel=SETUP, help="Create and verify every topic of the pipeline.")
app.add_typer(
    security.app,
    name="security",
    rich_help_panel=SETUP,
    help="Per-service SCRAM principals and the Kafka ACLs that let only a topic's owner write it.",
)
app.command(name="run", rich_help_panel=SETUP)(run.run)

app.command(name="place", rich_help_panel=WRITE)(orders.place)
app.command(name="cancel", rich_help_panel=WRITE)(orders.cancel)
app.add_typer(stock.app, name="stock", rich_help_panel=WRITE, help="Inventory commands: add units of a SKU to stock.")
app.command(name="ship", rich_help_panel=WRITE)(shipping.ship)
app.command(name="deliver", rich_help_panel=WRITE)(shipping.deliver)
app.command(name="return", rich_help_panel=WRITE)(returns.return_order)
app.command(name="generate", rich_help_panel=WRITE)(generate.generate)

app.add_typer(
    query.app,
    name="query",
    rich_help_panel=READ,
    help="Ask the read models: orders, sales, stock, customers (--after for read-your-writes, --as-of for the past).",
)
app.add_typer(
    replay.app,
    name="replay",
    rich_help_panel=READ,
    help="Rebuild a projection next to the live one and swap it in; copy a topic's events.",
)
app.command(name="tail", rich_help_panel=READ)(tail.tail)

app.command(name="status", rich_help_panel=OPERATE)(status.status)
app.command(name="serve", rich_help_panel=OPERATE)(serve.serve)
app.add_typer(
    dlq.app, name="dlq", rich_help_panel=OPERATE, help="Dead letters: list, show and retry records that failed."
)
app.add_typer(
    schemas.app,
    name="schemas",
    rich_help_panel=OPERATE,
    help="List the wire contract's Avro schemas and check their compatibility.",
)


def main() -> None:
    """The `orderstream` program. Errors are reported by RootGroup, so CliRunner tests of `app` see the same."""
    app()


if __name__ == "__main__":
    main()
