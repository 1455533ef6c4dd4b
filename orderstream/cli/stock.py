"""`orderstream stock add SKU QTY`: send a RestockSku to the inventory service, optionally wait for its outcome.

Input is checked with the domain's own rules before anything is produced. Exit codes: 0 sent (or accepted with
--wait), 1 bad input, rejected or not sent, 3 no reply within the wait timeout.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orderstream.cli.commands import send_command
from orderstream.cli.common import fail_input

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")


@app.command("add", context_settings={"ignore_unknown_options": True})  # so QTY may read "-5" (refused below)
def add(
    ctx: typer.Context,
    sku: Annotated[str, typer.Argument(help="The SKU to restock.", show_default=False)],
    quantity: Annotated[str, typer.Argument(help="How many units to add (a whole number > 0).", show_default=False)],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the outcome; print it and a read-your-writes token.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Add units of a SKU to stock. Prints the SKU once the broker has the command (or, with --wait, the outcome)."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import RestockSku
    from orderstream.domain.validation import ValidationError, check_id, check_stock_quantity, parse_whole_number

    try:
        check_id("sku", sku)
        units = check_stock_quantity(sku, parse_whole_number(f"quantity of {sku}", quantity))
    except ValidationError as exc:
        fail_input(exc)
    command_id = str(uuid.uuid4())
    command = RestockSku(
        command_id=command_id, issued_at=datetime.now(UTC), correlation_id=command_id, sku=sku, quantity=units
    )
    _send(ctx, command, wait, as_json)


def _send(ctx: typer.Context, command, wait: bool, as_json: bool) -> None:
    from orderstream.producers.outcomes import RestockOutcome
    from orderstream.topology import INVENTORY_COMMANDS, INVENTORY_REPLIES

    send_command(
        ctx,
        command,
        wait,
        as_json,
        commands_topic=INVENTORY_COMMANDS,
        replies_topic=INVENTORY_REPLIES,
        name=command.sku,
        fields={"sku": command.sku, "quantity": command.quantity},
        accepted_as=f"{command.sku} +{command.quantity}",
        rejected_as=f"restock of {command.sku}",
        outcome_model=RestockOutcome,
    )
