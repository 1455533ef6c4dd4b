"""`orderstream dlq list|show|retry`: the dead letters, what failed and why, and sending them back to the consumer group
that wrote each, after a fix."""

from __future__ import annotations

from typing import Annotated

import typer

from orderstream.cli.common import console, fail, id_column, print_json, require_broker, settings_of

app = typer.Typer(no_args_is_help=True)


def _letters(ctx):
    """Every dead letter; first a quick check that a broker answers (list, show and retry all start here)."""
    from orderstream.ops.dlq import read_letters

    settings = settings_of(ctx)
    require_broker(settings)
    try:
        return read_letters(settings)
    except RuntimeError as exc:  # a record the broker reports an error for
        fail(str(exc))


@app.command("list")
def list_letters(
    ctx: typer.Context,
    all_letters: Annotated[bool, typer.Option("--all", help="Include letters already retried.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Dead letters waiting for a fix (with --all, also those already retried)."""
    letters = [letter for letter in _letters(ctx) if all_letters or not letter.retried]
    if json_output:
        print_json([letter.summary() for letter in letters])
        return
    from rich.table import Table

    table = Table(id_column("id"), "key", "original", "group", "stage", "error", "retried")
    for letter in letters:
        retried = "yes" if letter.retried else ""
        if letter.retry_failures:
            retried = f"{retried} (failed again x{letter.retry_failures})".strip()
        table.add_row(
            f"{letter.dlq_topic}:{letter.dlq_partition}:{letter.dlq_offset}",
            letter.key or "-",
            letter.original,
            letter.group or "-",
            letter.stage + (f" ({letter.reader})" if letter.reader else ""),
            f"{letter.error_class}: {letter.error_message}",
            retried,
        )
    console().print(table if letters else "no dead letters")


@app.command()
def show(
    ctx: typer.Context,
    letter_id: Annotated[str, typer.Argument(help="The id from `dlq list`: <dlq topic>:<partition>:<offset>.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """One dead letter in full: where it came from, why it failed, its headers and its raw value (hex)."""
    matches = [letter for letter in _letters(ctx) if letter.summary()["id"] == letter_id]
    if not matches:
        fail(f"no dead letter {letter_id!r}; `orderstream dlq list --all` shows their ids")
    letter = matches[0]
    detail = letter.summary() | {
        "headers": {name: (value or b"").decode(errors="replace") for name, value in letter.headers},
        "value_hex": (letter.value or b"").hex(),
    }
    if json_output:
        print_json(detail)
        return
    out = console()
    for name, value in detail.items():
        if name != "headers":
            out.print(f"[bold]{name}[/]: {value}", highlight=False)
    for name, value in detail["headers"].items():
        out.print(f"  header {name}: {value}", highlight=False)


@app.command()
def retry(
    ctx: typer.Context,
    letter_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Ids to retry (default: every letter not yet retried).", show_default=False),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Send dead letters back to the consumer group that wrote each (never to the shared topic), after the fix."""
    from orderstream.ops.dlq import RetryRefused
    from orderstream.ops.dlq import retry as send_back

    letters = [letter for letter in _letters(ctx) if not letter.retried]
    if letter_ids:
        known = {letter.summary()["id"]: letter for letter in letters}
        missing = [i for i in letter_ids if i not in known]
        if missing:
            fail(f"no dead letter waiting with id {missing[0]!r} (already retried, or unknown)")
        letters = [known[i] for i in letter_ids]
    try:
        count = send_back(settings_of(ctx), letters)
    except (RetryRefused, RuntimeError) as exc:
        fail(str(exc))
    if json_output:
        print_json({"retried": count, "ids": [letter.summary()["id"] for letter in letters]})
    else:
        typer.echo(f"sent {count} dead letter(s) back to the consumer group that wrote each")
