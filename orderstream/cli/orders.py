"""`orderstream place` and `orderstream cancel`: send an order command, optionally wait for its outcome.

Input is checked with the domain's own rules before anything is produced. Exit codes: 0 sent (or accepted with
--wait, or CONFIRMED with --wait-for outcome), 1 a refused value, rejected or not sent, 2 a usage error (a value not of
its kind), 3 no reply (or outcome) within the wait timeout.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated

import typer

from orderstream.cli.commands import send_command
from orderstream.cli.common import fail_input

if TYPE_CHECKING:
    from orderstream.domain.commands import Command


class WaitFor(enum.StrEnum):
    """place --wait-for: the order service's reply (accepted or refused), or the order's outcome."""

    reply = "reply"
    outcome = "outcome"


def place(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option("--customer", help="Customer id.", show_default=False)],
    items: Annotated[
        list[str],
        typer.Option(
            "--item",
            help="SKU:QTY:PRICE, PRICE in major units (e.g. BOOK-1:2:12.50); repeat per line.",
            show_default=False,
        ),
    ],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 currency of every price.")] = "EUR",
    order_id: Annotated[str | None, typer.Option("--order-id", help="Order id (default: a new one).")] = None,
    channel: Annotated[str, typer.Option("--channel", help="Where the order comes from.")] = "cli",
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the outcome; print it and a read-your-writes token.")
    ] = False,
    wait_for: Annotated[
        WaitFor | None,
        typer.Option(
            "--wait-for",
            help="What to wait for: reply (the order service's answer, as --wait) or outcome (the order CONFIRMED, "
            "or REJECTED with the reason, after payment and stock).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Place an order. Prints the order id once the broker has the command (or, with --wait, the order service's
    reply; with --wait-for outcome, the order's outcome: exit 0 CONFIRMED, 1 REJECTED with the reason)."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import PlaceOrder
    from orderstream.domain.events import OrderLine
    from orderstream.domain.order import validate_place_order
    from orderstream.domain.validation import ValidationError

    currency = currency.upper()
    order_id = f"o-{uuid.uuid4().hex[:16]}" if order_id is None else order_id  # --order-id '' is refused, not replaced
    try:
        lines = tuple(_parse_item(item, currency, OrderLine) for item in items)
        command = PlaceOrder(
            command_id=str(uuid.uuid4()),
            issued_at=datetime.now(UTC),
            correlation_id=order_id,
            order_id=order_id,
            customer_id=customer,
            currency=currency,
            lines=lines,
            channel=channel,
        )
        validate_place_order(command)
    except ValidationError as exc:
        fail_input(exc)
    _send(ctx, command, wait or wait_for is not None, as_json, follow_outcome=wait_for is WaitFor.outcome)


def cancel(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order to cancel.", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the order's history).")] = "",
    expected_version: Annotated[
        int | None,
        typer.Option(
            "--expected-version", help="Only cancel if the order is still at this version.", show_default=False
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the outcome; print it and a read-your-writes token.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
) -> None:
    """Cancel an order (possible until it ships). Prints the order id once the broker has the command (or, with
    --wait, the outcome: an unknown order id is only found out with --wait)."""
    import uuid
    from datetime import UTC, datetime

    from orderstream.domain.commands import CancelOrder
    from orderstream.domain.order import validate_cancel_order
    from orderstream.domain.validation import ValidationError, check_version

    try:
        if expected_version is not None:  # before the command exists: a number past a long cannot be encoded
            check_version("expected version", expected_version)
        command = CancelOrder(
            command_id=str(uuid.uuid4()),
            issued_at=datetime.now(UTC),
            correlation_id=order_id,
            order_id=order_id,
            reason=reason,
            expected_version=expected_version,
        )
        validate_cancel_order(command)
    except ValidationError as exc:
        fail_input(exc)
    _send(ctx, command, wait, as_json)


def _parse_item(text: str, currency: str, line_type):
    """SKU:QTY:PRICE -> an order line. The price limit is checked here, in the currency typed: the domain's own
    check (validate_place_order) only knows minor units."""
    from orderstream.domain.money import to_minor
    from orderstream.domain.validation import MAX_UNIT_PRICE_MINOR, NotParsable, parse_whole_number

    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not all(part.strip() for part in parts):
        raise NotParsable(f"item {text!r} is not SKU:QTY:PRICE (e.g. BOOK-1:2:12.50)")
    sku, quantity, price = (part.strip() for part in parts)
    return line_type(
        sku=sku,
        quantity=parse_whole_number(f"quantity of {sku}", quantity),
        unit_price_minor=to_minor(price, currency, what=f"price of {sku}", limit_minor=MAX_UNIT_PRICE_MINOR),
    )


def _send(ctx: typer.Context, command: Command, wait: bool, as_json: bool, follow_outcome: bool = False) -> None:
    from orderstream.topology import ORDERS_COMMANDS, ORDERS_REPLIES

    order_id = command.aggregate_id
    send_command(
        ctx,
        command,
        wait,
        as_json,
        commands_topic=ORDERS_COMMANDS,
        replies_topic=ORDERS_REPLIES,
        name=order_id,
        fields={"order_id": order_id},
        accepted_as=order_id,
        rejected_as=f"{command.type_name} {order_id}",
        follow_outcome=follow_outcome,
    )
