"""`orderstream ship` and `orderstream deliver`: send ShipOrder / DeliverOrder to the order service (the order's single
writer decides its dispatch, so a ship and a cancel can never both win), optionally wait for the outcome. With --wait
the token points into orders.events, so `query order --after TOKEN` shows the change.

Input is checked with the domain's own rules before anything is produced. Exit codes: 0 sent (or accepted with
--wait), 1 bad input, rejected or not sent, 3 no reply within the wait timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from orderstream.cli.commands import send_command
from orderstream.cli.common import fail_input

if TYPE_CHECKING:
    from orderstream.domain.commands import Command

DEFAULT_CARRIER = "standard"

_WAIT_HELP = "Wait for the outcome; print it and a read-your-writes token."


def ship(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The confirmed order to dispatch.", show_default=False)],
    carrier: Annotated[str, typer.Option("--carrier", help="Who carries the parcel.")] = DEFAULT_CARRIER,
    tracking: Annotated[
        str | None,
        typer.Option("--tracking", help="The carrier's tracking number (default: a new one).", show_default=False),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Dispatch a confirmed order's shipment. Prints the order id once the broker has the command (or, with --wait,
    the outcome)."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import ShipOrder
    from orderstream.domain.order import validate_ship_order
    from orderstream.domain.validation import ValidationError

    try:
        command = ShipOrder(
            command_id=str(uuid.uuid4()),
            issued_at=datetime.now(UTC),
            correlation_id=order_id,
            order_id=order_id,
            carrier=carrier,
            # None only: an empty --tracking '' is refused by validate_ship_order like any other empty value
            tracking_number=f"TRK-{uuid.uuid4().hex[:12].upper()}" if tracking is None else tracking,
        )
        validate_ship_order(command)
    except ValidationError as exc:
        fail_input(exc)
    _send(ctx, command, wait, as_json)


def deliver(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The dispatched order that arrived.", show_default=False)],
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Confirm a dispatched order's delivery. Prints the order id once the broker has the command (or, with --wait,
    the outcome)."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import DeliverOrder
    from orderstream.domain.order import validate_deliver_order
    from orderstream.domain.validation import ValidationError

    try:
        command = DeliverOrder(
            command_id=str(uuid.uuid4()), issued_at=datetime.now(UTC), correlation_id=order_id, order_id=order_id
        )
        validate_deliver_order(command)
    except ValidationError as exc:
        fail_input(exc)
    _send(ctx, command, wait, as_json)


def _send(ctx: typer.Context, command: Command, wait: bool, as_json: bool) -> None:
    from orderstream.topology import ORDERS_COMMANDS, ORDERS_REPLIES

    order_id = command.aggregate_id
    extra = (
        {"carrier": command.carrier, "tracking_number": command.tracking_number} if hasattr(command, "carrier") else {}
    )
    from orderstream.producers.outcomes import ShipmentOutcome

    send_command(
        ctx,
        command,
        wait,
        as_json,
        commands_topic=ORDERS_COMMANDS,
        replies_topic=ORDERS_REPLIES,
        name=order_id,
        fields={"order_id": order_id},
        extra=extra,
        accepted_as=order_id,
        version_label="order version",
        rejected_as=f"{command.type_name} {order_id}",
        outcome_model=ShipmentOutcome,
    )
