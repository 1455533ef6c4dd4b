"""`orderstream return`: take back a delivered order, whole or by line, optionally waiting for the outcome.

ReturnOrder goes to the order service (orders.commands), which refuses a return of an order that is not delivered, or
of more than was delivered and not returned yet, with one line. With --wait the token points into orders.events, so
`query order --after TOKEN` shows the returned quantities. Input is checked with the domain's own rules before
anything is produced. Exit codes: 0 sent (or accepted with --wait), 1 bad input, refused or not sent, 3 no reply in
time.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orderstream.cli.commands import send_command
from orderstream.cli.common import fail


def return_order(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The delivered order to take back.", show_default=False)],
    items: Annotated[
        list[str] | None,
        typer.Option(
            "--item",
            help="SKU:QTY to take back; repeat per line (default: everything not returned).",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the order's history).")] = "",
    no_restock: Annotated[
        bool, typer.Option("--no-restock", help="The units do not go back on hand (damaged goods).")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the outcome; print it and a read-your-writes token.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Return a delivered order, whole or by line: the returned lines' amount is refunded and, unless --no-restock,
    the units go back on hand. Prints the order id once the broker has the command (or, with --wait, the outcome)."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import ReturnItem, ReturnOrder
    from orderstream.domain.order import validate_return_order
    from orderstream.domain.validation import ValidationError
    from orderstream.producers.outcomes import ReturnOutcome

    try:
        command = ReturnOrder(
            command_id=str(uuid.uuid4()),
            issued_at=datetime.now(UTC),
            correlation_id=order_id,
            order_id=order_id,
            items=tuple(_parse_item(item, ReturnItem) for item in items or ()),
            reason=reason,
            restock=not no_restock,
        )
        validate_return_order(command)
    except ValidationError as exc:
        fail(str(exc))
    send_command(
        ctx,
        command,
        wait,
        as_json,
        commands_topic=_topics()[0],
        replies_topic=_topics()[1],
        name=order_id,
        fields={"order_id": order_id},
        extra={
            "items": [{"sku": item.sku, "quantity": item.quantity} for item in command.items],
            "restock": command.restock,
        },
        accepted_as=f"return of {order_id}",
        outcome_model=ReturnOutcome,
        version_label="order version",
        rejected_as=f"ReturnOrder {order_id}",
    )


def _parse_item(text: str, item_type):
    """SKU:QTY -> a return item."""
    from orderstream.domain.validation import ValidationError, parse_whole_number

    parts = text.rsplit(":", 1)
    if len(parts) != 2 or not all(part.strip() for part in parts):
        raise ValidationError(f"item {text!r} is not SKU:QTY (e.g. BOOK-1:1)")
    sku, quantity = (part.strip() for part in parts)
    return item_type(sku=sku, quantity=parse_whole_number(f"quantity of {sku}", quantity))


def _topics() -> tuple[str, str]:
    from orderstream.topology import ORDERS_COMMANDS, ORDERS_REPLIES

    return ORDERS_COMMANDS, ORDERS_REPLIES
