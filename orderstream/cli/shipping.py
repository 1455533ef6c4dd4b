"""`orderstream ship` and `orderstream deliver`: send a shipping command, optionally wait for its outcome.

Input is checked with the domain's own rules before anything is produced. Exit codes: 0 sent (or accepted with
--wait), 1 bad input, rejected or not sent, 3 no reply within the wait timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from orderstream.cli.common import fail, print_json, settings_of

if TYPE_CHECKING:
    from orderstream.domain.commands import Command

EXIT_TIMEOUT = 3
DEFAULT_CARRIER = "standard"

_WAIT_HELP = "Wait for the outcome; print it and a read-your-writes token."


def ship(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The confirmed order to dispatch.", show_default=False)],
    carrier: Annotated[str, typer.Option("--carrier", help="Who carries the parcel.")] = DEFAULT_CARRIER,
    tracking: Annotated[
        Optional[str], typer.Option("--tracking", help="The carrier's tracking number (default: a new one).", show_default=False)
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Dispatch a confirmed order's shipment. Prints the order id once the broker has the command."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import DispatchShipment
    from orderstream.domain.shipping import validate_dispatch
    from orderstream.domain.validation import ValidationError

    try:
        command = DispatchShipment(
            command_id=str(uuid.uuid4()),
            issued_at=datetime.now(UTC),
            correlation_id=order_id,
            order_id=order_id,
            carrier=carrier,
            tracking_number=tracking or f"TRK-{uuid.uuid4().hex[:12].upper()}",
        )
        validate_dispatch(command)
    except ValidationError as exc:
        fail(str(exc))
    _send(ctx, command, wait, as_json)


def deliver(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The dispatched order that arrived.", show_default=False)],
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Confirm a dispatched order's delivery. Prints the order id once the broker has the command."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import ConfirmDelivery
    from orderstream.domain.shipping import validate_delivery
    from orderstream.domain.validation import ValidationError

    try:
        command = ConfirmDelivery(
            command_id=str(uuid.uuid4()), issued_at=datetime.now(UTC), correlation_id=order_id, order_id=order_id
        )
        validate_delivery(command)
    except ValidationError as exc:
        fail(str(exc))
    _send(ctx, command, wait, as_json)


def _send(ctx: typer.Context, command: Command, wait: bool, as_json: bool) -> None:
    from orderstream.producers.commands import CommandSender, ReplyTimeout, SendError
    from orderstream.topology import SHIPPING_COMMANDS, SHIPPING_REPLIES

    settings = settings_of(ctx)
    order_id = command.aggregate_id
    with CommandSender(settings, SHIPPING_COMMANDS, SHIPPING_REPLIES) as sender:
        try:
            if not wait:
                sent = sender.send(command)
            else:
                outcome = sender.send_and_wait(command)
        except SendError as exc:
            fail(str(exc))
        except ReplyTimeout as exc:
            if as_json:
                print_json(_result(command, None, None, str(exc), None))
            fail(str(exc), code=EXIT_TIMEOUT)
    if not wait:
        if as_json:
            print_json(_result(command, None, None, None, None) | {"partition": sent.partition, "offset": sent.offset})
        else:
            typer.echo(order_id)
        return
    reply, token = outcome.reply, outcome.token
    if as_json:
        print_json(_result(command, reply.accepted, reply.version, reply.reason or None, token))
    elif reply.accepted:
        typer.echo(f"{order_id} accepted: shipment version {reply.version}, token {token}")
    if not reply.accepted:
        fail(f"{command.type_name} {order_id} rejected: {reply.reason}")


def _result(command: Command, accepted, version, reason, token) -> dict:
    result = {
        "order_id": command.aggregate_id,
        "accepted": accepted,
        "version": version,
        "reason": reason,
        "token": None if token is None else str(token),
        "command_id": command.command_id,
    }
    if hasattr(command, "carrier"):
        result |= {"carrier": command.carrier, "tracking_number": command.tracking_number}
    return result
