"""`orderstream query order|orders|sales|customer|stock|payments`: read the projections through their query interface.

--json prints only JSON on stdout: what the query functions of the view modules return, with stable field
names (docs/ARCHITECTURE.md describes the views); without it, rich tables for people.
--after TOKEN (from `place --wait`) waits until the view has applied that event, up to --timeout seconds.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from orderstream.cli.common import console, fail, id_column, print_json, settings_of, usage_error

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")

JsonOption = Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", help="Seconds --after waits for the view (default: the wait_timeout_s setting).", min=0),
]


def _open(settings, projection: str):
    from orderstream.views.queries import ReadModel
    from orderstream.views.store import StoreError

    try:
        return ReadModel(settings.database_url_for(projection), projection)
    except StoreError as exc:
        fail(str(exc))


def _wait_for(settings, projection: str, token_text: str, timeout_s: float | None) -> None:
    """Block until the projection has applied the token (the core's read-your-writes wait); one line and exit 1
    when the token is refused or cannot exist, or the view is still behind after the timeout."""
    from orderstream.kafka.consistency import ConsistencyToken, TokenError
    from orderstream.ops.read_your_writes import (
        TokenRefused,
        TokenUnreachable,
        ViewBehind,
        parse_token,
        wait_until_applied,
    )
    from orderstream.views.store import StoreError

    if timeout_s is not None and not math.isfinite(timeout_s):
        fail(f"--timeout must be a finite number of seconds, got {timeout_s:g}")
    try:  # a token not of the <topic>:<partition>:<offset> kind is a usage error (exit 2)
        ConsistencyToken.parse(token_text)
    except TokenError as exc:
        usage_error(str(exc))
    try:
        wait_until_applied(settings, projection, parse_token(projection, token_text), timeout_s)
    except (TokenRefused, TokenUnreachable, ViewBehind, StoreError) as exc:
        fail(str(exc))


def _money(amount_minor: int, currency: str) -> str:
    try:
        from orderstream.domain.money import format_minor

        return format_minor(amount_minor, currency)
    except (ImportError, ValueError, KeyError):
        return f"{amount_minor} {currency} (minor units)"


@app.command("order")
def order(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order id.")],
    after: Annotated[
        str | None, typer.Option("--after", help="Wait until the view has applied this token (from `place --wait`).")
    ] = None,
    timeout: TimeoutOption = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Show the order as it was at this ISO time (UTC if no zone).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """One order: its summary, lines and the timeline of its events (--as-of: folded from its timeline up to TIME)."""
    from orderstream.views.order_view import NAME, order_as_of, order_detail

    settings = settings_of(ctx)
    moment = _parse_time(as_of, "--as-of") if as_of is not None else None  # --as-of (issue 6)
    if after is not None:  # --after '' is refused by the token's parser, not ignored
        _wait_for(settings, NAME, after, timeout)
    with _open(settings, NAME) as model:
        detail = order_detail(model, order_id) if moment is None else order_as_of(model, order_id, moment)
    if detail is None:
        fail(f"order {order_id} not found in {NAME}" + (f" as of {as_of}" if moment else ""))
    if json_output:
        from orderstream.views.models import OrderDetail, dump

        print_json(dump(OrderDetail.model_validate(detail)))
        return
    from rich.table import Table

    out = console()
    out.print(
        f"[bold]{detail['order_id']}[/]  customer {detail['customer_id']}  [bold]{detail['status']}[/]  "
        f"v{detail['version']}  {_money(detail['total_minor'], detail['currency'])}  "
        f"payment {detail['payment_status'] or '-'}  placed {detail['placed_at']}",
        highlight=False,
    )
    lines = Table("sku", "quantity", "unit price", "amount", title="lines")
    for line in detail["lines"]:
        amount = line["quantity"] * line["unit_price_minor"]
        lines.add_row(
            line["sku"], str(line["quantity"]), _money(line["unit_price_minor"], detail["currency"]),
            _money(amount, detail["currency"]),
        )  # fmt: skip
    out.print(lines)
    timeline = Table("version", "event", "occurred at", title="timeline")
    for entry in detail["timeline"]:
        timeline.add_row(str(entry["version"]), entry["type"], entry["occurred_at"])
    out.print(timeline)


def _parse_time(text: str, option: str = "--since") -> datetime:
    """An ISO 8601 time, UTC if it has no zone. A trailing z means UTC as Z does (RFC 3339 allows either case);
    fromisoformat only knows the capital one."""
    stripped = text.strip()
    if stripped[-1:] in ("Z", "z"):
        stripped = stripped[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        usage_error(f"{option} {text!r} is not an ISO 8601 time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("orders")
def orders(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's orders.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only orders in this status (e.g. PLACED).")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only orders placed at or after this ISO time (UTC if no zone).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many orders per page.", min=1, max=10_000)] = 50,
    sort: Annotated[
        str, typer.Option("--sort", help="placed_at, updated_at, total_minor, order_id, customer_id or status.")
    ] = "placed_at",
    ascending: Annotated[bool, typer.Option("--asc", help="Oldest/smallest first (default: newest first).")] = False,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", help="Go on after this cursor (printed on stderr after a page that is not the last)."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every order of the selection, page by page (no limit).")
    ] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print CSV (a header row, one row per order).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Order summaries, newest first, a page at a time: a page that is not the last ends with `next cursor: C` on
    stderr (--cursor C goes on; the cursor carries the filters and sort). --all walks every page."""
    from orderstream.views.base import STATUSES, utc_text
    from orderstream.views.order_view import NAME, ORDER_SORTS, OrderCursor, OrderSelection, page_orders, walk_orders
    from orderstream.views.queries import QueryError

    if status is not None and status.upper() not in STATUSES:
        usage_error(f"unknown status {status!r}; choose from: {', '.join(STATUSES)}")
    if sort not in ORDER_SORTS:  # before the view is opened: a typo is reported even before the view exists
        usage_error(f"cannot sort by {sort!r}; choose from: {', '.join(ORDER_SORTS)}")
    if csv_output and json_output:
        usage_error("--csv and --json: choose one")
    settings = settings_of(ctx)
    moment = utc_text(_parse_time(since)) if since is not None else None
    try:
        after = OrderCursor.decode(cursor) if cursor is not None else None
        selection = OrderSelection(customer, None if status is None else status.upper(), moment, sort, not ascending)
        if after is not None and not (customer or status or since or sort != "placed_at" or ascending):
            selection = after.selection  # --cursor alone goes on with the cursor's own selection
    except QueryError as exc:
        fail(str(exc))
    next_cursor = None
    with _open(settings, NAME) as model:
        try:
            if every:
                if after is not None:
                    fail("--all walks from the start: give it without --cursor")
                rows = list(walk_orders(model, selection))
            else:
                rows, next_cursor = page_orders(model, selection, limit, after)
        except QueryError as exc:
            fail(str(exc))
    _print_orders(rows, json_output, csv_output)
    if next_cursor is not None:
        typer.echo(f"next cursor: {next_cursor.encode()}", err=True)


def _print_orders(rows: list[dict], json_output: bool, csv_output: bool) -> None:
    from orderstream.views.models import OrderSummary, dump, orders_csv

    if json_output:
        print_json([dump(OrderSummary.model_validate(row)) for row in rows])
        return
    if csv_output:
        for chunk in orders_csv(rows):
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return
    from rich.table import Table

    table = Table(id_column("order"), id_column("customer"), "status", "v", "total", "payment", "placed at")
    for row in rows:
        table.add_row(
            row["order_id"], row["customer_id"], row["status"], str(row["version"]),
            _money(row["total_minor"], row["currency"]), row["payment_status"] or "-", row["placed_at"],
        )  # fmt: skip
    console().print(table)


SALES_GROUPINGS = ("sku", "day", "day-sku")


@app.command("sales")
def sales(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="Group by sku, day or day-sku.")] = "sku",
    json_output: JsonOption = False,
) -> None:
    """Booked units and revenue (orders confirmed or later, by the day they were placed) and orders per status."""
    from orderstream.views.queries import QueryError
    from orderstream.views.sales_view import NAME, status_counts
    from orderstream.views.sales_view import sales as sales_rows

    if by not in SALES_GROUPINGS:  # before the view is opened: a typo is reported even before the view exists
        usage_error(f"cannot group sales by {by!r}; choose from: {', '.join(SALES_GROUPINGS)}")
    settings = settings_of(ctx)
    with _open(settings, NAME) as model:
        try:
            rows = sales_rows(model, by=by)
        except QueryError as exc:
            usage_error(str(exc))
        statuses = status_counts(model)
    if json_output:
        from orderstream.views.models import SalesReport, dump

        print_json(dump(SalesReport.model_validate({"by": by, "rows": rows, "statuses": statuses})))
        return
    from rich.table import Table

    keys = {"sku": ["sku"], "day": ["day"], "day-sku": ["day", "sku"]}[by]
    table = Table(*keys, "units", "revenue", title=f"sales by {by}")
    for row in rows:
        table.add_row(*(row[k] for k in keys), str(row["units"]), _money(row["revenue_minor"], row["currency"]))
    out = console()
    out.print(table)
    counts = Table("status", "orders", title="orders per status")
    for entry in statuses:
        counts.add_row(entry["status"], str(entry["orders"]))
    out.print(counts)


@app.command("customer")
def customer(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The customer id.")],
    json_output: JsonOption = False,
) -> None:
    """A customer's orders count and lifetime value (orders not rejected or cancelled), per currency."""
    from orderstream.views.customer_view import NAME, customer_summary

    settings = settings_of(ctx)
    with _open(settings, NAME) as model:
        rows = customer_summary(model, customer_id)
    if not rows:
        fail(f"customer {customer_id} not found in {NAME}")
    if json_output:
        from orderstream.views.models import CustomerTotal, dump

        print_json([dump(CustomerTotal.model_validate(row)) for row in rows])
        return
    from rich.table import Table

    table = Table("currency", "orders", "lifetime value", title=f"customer {customer_id}")
    for row in rows:
        table.add_row(row["currency"], str(row["orders_count"]), _money(row["lifetime_value_minor"], row["currency"]))
    console().print(table)


@app.command("stock")
def stock(
    ctx: typer.Context,
    sku: Annotated[str | None, typer.Argument(help="Only this SKU (default: every SKU).", show_default=False)] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", help="Wait until the view has applied this token (from `stock add --wait`)."),
    ] = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Units on hand, reserved for orders and available (on hand - reserved) per SKU."""
    from orderstream.views.stock_view import NAME, stock_levels

    settings = settings_of(ctx)
    if after is not None:
        _wait_for(settings, NAME, after, timeout)
    with _open(settings, NAME) as model:
        rows = stock_levels(model, sku)
    if sku is not None and not rows:
        fail(f"sku {sku} not found in {NAME}")
    if json_output:
        from orderstream.views.models import StockLevel, dump

        print_json([dump(StockLevel.model_validate(row)) for row in rows])
        return
    from rich.table import Table

    table = Table("sku", "on hand", "reserved", "available", title="stock")
    for row in rows:
        table.add_row(row["sku"], str(row["on_hand"]), str(row["reserved"]), str(row["available"]))
    console().print(table)


@app.command("payments")
def payments(
    ctx: typer.Context,
    order_id: Annotated[str | None, typer.Option("--order", help="Only this order.", show_default=False)] = None,
    customer: Annotated[
        str | None,
        typer.Option("--customer", help="Only this customer's orders, and their totals.", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many orders.", min=1)] = 100,
    json_output: JsonOption = False,
) -> None:
    """Money per order (and per customer with --customer): authorized, captured, refunded, voided and outstanding
    (authorized, neither captured nor voided: what holds the credit limit)."""
    from orderstream.views.payment_view import NAME, customer_payments, order_payments

    settings = settings_of(ctx)
    with _open(settings, NAME) as model:
        orders = order_payments(model, order_id=order_id, customer_id=customer, limit=limit)
        totals = customer_payments(model, customer) if customer is not None else []
    if order_id is not None and not orders:
        fail(f"order {order_id} not found in {NAME}")
    if json_output:
        print_json({"orders": orders, "customers": totals})
        return
    from rich.table import Table

    columns = ("authorized_minor", "captured_minor", "refunded_minor", "voided_minor", "outstanding_minor")
    table = Table("order", "customer", "status", *(c.removesuffix("_minor") for c in columns), title="payments")
    for row in orders:
        amounts = (_money(row[c], row["currency"]) for c in columns)
        table.add_row(row["order_id"], row["customer_id"], row["status"], *amounts)
    console().print(table)
    if totals:
        table = Table("customer", "currency", *(c.removesuffix("_minor") for c in columns), title="per customer")
        for row in totals:
            amounts = (_money(row[c], row["currency"]) for c in columns)
            table.add_row(row["customer_id"], row["currency"], *amounts)
        console().print(table)
